// Handing back the stack pages a long-lived thread touched once and no longer needs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wharf {

// A thread keeps every stack page it ever touched resident for as long as it lives. A thread
// that went deep once (JSON, a report, a save) and then spends its life waiting in poll() can
// give those pages back: trim() returns every page below the one that holds its own frame.
// Use it only on the thread whose stack it trims; it finds that stack on first use.
class ThreadStack {
 public:
  // Gives back the pages below the caller's frame. Pages touched again later come back
  // zero-filled on demand, as at thread start.
  void trim();

  // How many pages between the stack's low end and the caller's frame are resident (tests).
  std::size_t resident_pages_below_here();

 private:
  // The lowest usable address (above the guard page); 0 if unknown.
  std::uintptr_t low();

  std::uintptr_t low_ = 0;
  bool looked_up_ = false;
};

}  // namespace wharf
