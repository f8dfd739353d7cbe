// Finding the calling thread's stack and returning its unused pages with MADV_DONTNEED.
#include "common/thread_stack.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

namespace wharf {

namespace {

std::uintptr_t page_size() {
  static const std::uintptr_t size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// The start of the page that holds this function's frame: what lies under it is unused by
// the caller and free to give back.
[[gnu::noinline]] std::uintptr_t unused_top() {
  volatile char here = 0;
  return reinterpret_cast<std::uintptr_t>(&here) & ~(page_size() - 1);
}

}  // namespace

std::uintptr_t ThreadStack::low() {
  if (looked_up_) return low_;
  looked_up_ = true;
  pthread_attr_t attributes;
  if (::pthread_getattr_np(::pthread_self(), &attributes) != 0) return low_;
  void* address = nullptr;
  std::size_t size = 0;
  if (::pthread_attr_getstack(&attributes, &address, &size) == 0) {
    low_ = reinterpret_cast<std::uintptr_t>(address);
  }
  ::pthread_attr_destroy(&attributes);
  return low_;
}

void ThreadStack::trim() {
  std::uintptr_t low = this->low();
  std::uintptr_t top = unused_top();
  if (low == 0 || top <= low) return;
  (void)::madvise(reinterpret_cast<void*>(low), top - low, MADV_DONTNEED);
}

std::size_t ThreadStack::resident_pages_below_here() {
  std::uintptr_t low = this->low();
  std::uintptr_t top = unused_top();
  if (low == 0 || top <= low) return 0;
  std::vector<unsigned char> resident((top - low) / page_size());
  if (::mincore(reinterpret_cast<void*>(low), top - low, resident.data()) != 0) return 0;
  std::size_t count = 0;
  for (unsigned char page : resident) count += page & 1;
  return count;
}

}  // namespace wharf
