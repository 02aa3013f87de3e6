#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace connmgr {

/// A `flat_table` hash for integers this process picks itself (slot
/// numbers, ids), not ones a peer chooses: a multiply and a shift.
struct int_hash {
  size_t operator()(uint64_t x) const noexcept {
    x *= 0x9e3779b97f4a7c15ULL;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

/// A hash table stored in one array (open addressing, linear probing,
/// deletion by backward shift): no allocation per entry, and a lookup
/// touches one or two cache lines. `Hash` must spread its values over all
/// bits of `size_t` (the low bits pick the bucket); `K` and `V` must be
/// default-constructible and movable.
///
/// Guarantees: `find`, `try_emplace` and `erase` cost O(1) expected; the
/// load stays at most 1/2. Pointers to values stay valid until the next
/// `try_emplace` or `erase` (both may move entries). Not thread-safe.
template <class K, class V, class Hash>
class flat_table {
public:
  explicit flat_table(Hash hash = Hash{}) : hash_(std::move(hash)) {
    // nop
  }

  /// Entries held.
  size_t size() const noexcept {
    return size_;
  }

  /// Whether no entry is held.
  bool empty() const noexcept {
    return size_ == 0;
  }

  /// Makes room for `n` entries without growing again.
  void reserve(size_t n) {
    size_t want = 16;
    while (want < 2 * n)
      want *= 2;
    if (want > keys_.size())
      rehash(want);
  }

  /// The value of `k`, or null.
  V* find(const K& k) noexcept {
    if (size_ == 0)
      return nullptr;
    for (auto i = index(k);; i = (i + 1) & mask_) {
      if (!used_[i])
        return nullptr;
      if (keys_[i] == k)
        return &values_[i];
    }
  }

  /// The value of `k`, or null.
  const V* find(const K& k) const noexcept {
    return const_cast<flat_table*>(this)->find(k);
  }

  /// The value of `k`, default-constructed first if `k` was not held; the
  /// flag is true if it was inserted.
  std::pair<V*, bool> try_emplace(const K& k) {
    if (2 * (size_ + 1) > keys_.size())
      rehash(keys_.empty() ? 16 : 2 * keys_.size());
    auto i = index(k);
    for (; used_[i]; i = (i + 1) & mask_)
      if (keys_[i] == k)
        return {&values_[i], false};
    used_[i] = 1;
    keys_[i] = k;
    ++size_;
    return {&values_[i], true};
  }

  /// Removes `k`; false if it was not held.
  bool erase(const K& k) {
    if (size_ == 0)
      return false;
    auto i = index(k);
    for (;; i = (i + 1) & mask_) {
      if (!used_[i])
        return false;
      if (keys_[i] == k)
        break;
    }
    // Backward shift: pull later entries of the probe run into the hole
    // while that does not move one before its home bucket.
    for (auto j = (i + 1) & mask_; used_[j]; j = (j + 1) & mask_) {
      auto home = index(keys_[j]);
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        keys_[i] = std::move(keys_[j]);
        values_[i] = std::move(values_[j]);
        i = j;
      }
    }
    used_[i] = 0;
    keys_[i] = K{};
    values_[i] = V{};
    --size_;
    return true;
  }

  /// Calls `f(key, value)` for every entry, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < keys_.size(); ++i)
      if (used_[i])
        f(keys_[i], values_[i]);
  }

private:
  size_t index(const K& k) const noexcept {
    return hash_(k) & mask_;
  }

  void rehash(size_t capacity) {
    std::vector<K> keys(capacity);
    std::vector<V> values(capacity);
    std::vector<uint8_t> used(capacity, 0);
    keys.swap(keys_);
    values.swap(values_);
    used.swap(used_);
    mask_ = capacity - 1;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!used[i])
        continue;
      auto j = index(keys[i]);
      while (used_[j])
        j = (j + 1) & mask_;
      used_[j] = 1;
      keys_[j] = std::move(keys[i]);
      values_[j] = std::move(values[i]);
    }
  }

  Hash hash_;
  std::vector<K> keys_;
  std::vector<V> values_;
  std::vector<uint8_t> used_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

} // namespace connmgr
