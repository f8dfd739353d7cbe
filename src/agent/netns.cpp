// Named network namespaces, in process.
#include "agent/netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <thread>

#include "agent/cgroup_files.hpp"
#include "agent/network.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;
using cgroup_files::errno_error;

namespace {

// Held while a process makes /run/netns a shared mount point, so two agents never stack two.
const fs::path kNetnsLockFile = "/run/wharf/netns.lock";

}  // namespace

// A mount made under /run/netns then shows in other mount namespaces too (and an unmount
// there), as iproute2 arranges it: /run/netns becomes a mount point of its own, shared.
Status ensure_shared_netns_dir() {
  static std::mutex mutex;
  static bool done = false;
  std::lock_guard lock(mutex);
  if (done) return {};
  auto host_lock = lock_file(kNetnsLockFile);
  if (!host_lock) return std::unexpected(host_lock.error());
  std::error_code error;
  fs::create_directories(kNetnsDir, error);
  if (error) {
    return fail(ErrorCode::kInternal, "creating " + kNetnsDir.string() + ": " + error.message());
  }
  bool bound = false;
  while (::mount("", kNetnsDir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL || bound) {
      return std::unexpected(
          errno_error(ErrorCode::kInternal, "making " + kNetnsDir.string() + " a shared mount"));
    }
    if (::mount(kNetnsDir.c_str(), kNetnsDir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
      return std::unexpected(
          errno_error(ErrorCode::kInternal, "bind-mounting " + kNetnsDir.string() + " on itself"));
    }
    bound = true;
  }
  done = true;
  return {};
}

// A new network namespace, bound at `path` as `ip netns add` binds it.
Result<NewNamespace> create_netns(const fs::path& path) {
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
  if (!file) return std::unexpected(errno_error(ErrorCode::kInternal, "creating " + path.string()));
  file.reset();
  Result<NewNamespace> made = fail(ErrorCode::kInternal, "not made");
  // unshare() moves only the calling thread, which then ends: the mount keeps the namespace.
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      made = std::unexpected(errno_error(ErrorCode::kInternal, "unshare(CLONE_NEWNET)"));
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      made = std::unexpected(errno_error(ErrorCode::kInternal, "bind-mounting the namespace"));
      return;
    }
    UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!fd) {
      made = std::unexpected(errno_error(ErrorCode::kInternal, "opening the namespace"));
      return;
    }
    auto netlink = RouteNetlink::open();
    if (!netlink) {
      made = std::unexpected(netlink.error());
      return;
    }
    made = NewNamespace{std::move(fd), std::move(*netlink)};
  }).join();
  if (!made) {
    ::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
    return std::unexpected(std::move(made.error()).context("creating namespace " + path.string()));
  }
  return made;
}

// Unmounts and removes a namespace's file, where there is one. The namespace itself (and its
// veth, with the veth's route) goes once nothing else holds it.
Status remove_netns(const fs::path& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return std::unexpected(errno_error(ErrorCode::kInternal, "unmounting " + path.string()));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected(errno_error(ErrorCode::kInternal, "removing " + path.string()));
  }
  return {};
}

Status delete_link_named(RouteNetlink& host, const std::string& name) {
  auto index = host.link_index(name);
  if (!index && index.error().code == ErrorCode::kNotFound) return {};
  if (!index) return std::unexpected(index.error());
  auto deleted = host.delete_link(*index);
  if (!deleted && deleted.error().code != ErrorCode::kNotFound) return deleted;
  return {};
}

}  // namespace wharf::agent
