// The address manager's storage: the small-buffer id pools, the big arrays
// (mapped pages from 64 KiB on, so freed tables go back to the kernel) and
// the open-addressing index from address hashes to entry ids.
#include "connmgr/actors/address_manager.hpp"

#include <algorithm>
#include <cstdint>
#include <new>

#include <sys/mman.h>

namespace connmgr {

// -- id_pool -------------------------------------------------------------------------

address_manager::id_pool::id_pool(id_pool&& other) noexcept
  : size_(other.size_), cap_(other.cap_) {
  if (cap_ <= inline_cap) {
    std::copy(other.inline_, other.inline_ + inline_cap, inline_);
  } else {
    heap_ = other.heap_;
    other.cap_ = inline_cap;
  }
  other.size_ = 0;
}

address_manager::id_pool&
address_manager::id_pool::operator=(id_pool&& other) noexcept {
  if (this != &other) {
    this->~id_pool();
    new (this) id_pool(std::move(other));
  }
  return *this;
}

address_manager::id_pool::~id_pool() {
  if (cap_ > inline_cap)
    delete[] heap_;
}

void address_manager::id_pool::push_back(uint32_t id) {
  if (size_ == cap_) {
    // Capacity stays below 2^32: ids are far fewer (see max_table_slots).
    auto cap = cap_ * 2;
    auto grown = new uint32_t[cap];
    std::copy(data(), data() + size_, grown);
    if (cap_ > inline_cap)
      delete[] heap_;
    heap_ = grown;
    cap_ = cap;
  }
  data()[size_++] = id;
}

// -- big arrays ----------------------------------------------------------------------

namespace {

constexpr size_t huge_page = size_t{2} << 20;
constexpr size_t small_page = size_t{4} << 10;

// Tables from this size on come straight from the kernel and go straight
// back when freed. Through malloc, a freed table stays in the arena of the
// thread that freed it (glibc raises its mmap threshold after the first
// such free), so a process that makes and drops address managers on
// several threads (a node restarted, many nodes in one process) grows by
// about a table per thread.
constexpr size_t direct_from_kernel = size_t{64} << 10;

size_t mapped_size(size_t bytes) {
  auto page = bytes >= huge_page ? huge_page : small_page;
  return (bytes + page - 1) / page * page;
}

} // namespace

// Blocks of at least one huge page are huge-page aligned and, on Linux,
// advised as huge pages (a no-op where transparent huge pages are off);
// from 64 KiB on they are mapped pages; smaller ones come from operator
// new.
void* address_manager::allocate_big(size_t bytes, size_t align) {
  if (bytes < direct_from_kernel)
    return ::operator new (bytes, std::align_val_t{align});
  auto size = mapped_size(bytes);
  // Over-map by one huge page so an aligned run of `size` bytes fits, then
  // give the rest back.
  auto extra = size >= huge_page ? huge_page : 0;
  auto* raw = ::mmap(nullptr, size + extra, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    throw std::bad_alloc{};
  auto* base = static_cast<char*>(raw);
  auto* ptr = base;
  if (extra > 0) {
    auto addr = reinterpret_cast<uintptr_t>(base);
    auto aligned = (addr + huge_page - 1) / huge_page * huge_page;
    ptr = base + (aligned - addr);
    if (ptr > base)
      ::munmap(base, static_cast<size_t>(ptr - base));
    auto tail = static_cast<size_t>(base + size + extra - (ptr + size));
    if (tail > 0)
      ::munmap(ptr + size, tail);
#if defined(MADV_HUGEPAGE)
    ::madvise(ptr, size, MADV_HUGEPAGE);
#endif
  }
  return ptr;
}

void address_manager::free_big(void* ptr, size_t bytes, size_t align) noexcept {
  if (bytes < direct_from_kernel)
    ::operator delete (ptr, std::align_val_t{align});
  else
    ::munmap(ptr, mapped_size(bytes));
}

// -- id_table ----------------------------------------------------------------------

void address_manager::id_table::insert(uint64_t h, uint32_t id,
                                       uint32_t check) {
  // At most half full, so probe runs stay short.
  if ((count_ + 1) * 2 > cells_.size()) {
    big_vector<cell> old;
    old.swap(cells_);
    cells_.resize(std::max<size_t>(16, old.size() * 2));
    mask_ = cells_.size() - 1;
    count_ = 0;
    for (const auto& c : old)
      if (c.id != npos)
        insert(c.hash, c.id, c.check);
  }
  auto i = h & mask_;
  while (cells_[i].id != npos)
    i = (i + 1) & mask_;
  cells_[i] = cell{h, id, check};
  ++count_;
}

void address_manager::id_table::erase(uint64_t h, uint32_t id) {
  if (cells_.empty())
    return;
  auto i = h & mask_;
  while (cells_[i].id != id) {
    if (cells_[i].id == npos)
      return;
    i = (i + 1) & mask_;
  }
  // Backward-shift deletion: pull later cells of the run into the hole
  // when that brings them no further from their home cell, so that no
  // tombstones are needed.
  for (auto j = (i + 1) & mask_; cells_[j].id != npos; j = (j + 1) & mask_) {
    auto home = cells_[j].hash & mask_;
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      cells_[i] = cells_[j];
      i = j;
    }
  }
  cells_[i] = cell{};
  --count_;
}

} // namespace connmgr
