// Named network namespaces under /run/netns, made and removed in process (as `ip netns add`
// and `ip netns del` do, without starting ip), for the bridge and awsvpc networks.
#pragma once

#include <filesystem>
#include <string>

#include "agent/rtnetlink.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

// Makes /run/netns a shared mount point of its own, once per process, as iproute2 does, so a
// namespace bound there shows in other mount namespaces too.
Status ensure_shared_netns_dir();

struct NewNamespace {
  UniqueFd fd;
  RouteNetlink netlink;  // a socket inside it
};

// A new network namespace, bound at `path` as `ip netns add` binds it.
Result<NewNamespace> create_netns(const std::filesystem::path& path);

// Unmounts and removes a namespace's file, where there is one. The namespace itself (and its
// veth, with the veth's route) goes once nothing else holds it.
Status remove_netns(const std::filesystem::path& path);

// Deletes link `name` where it exists.
Status delete_link_named(RouteNetlink& host, const std::string& name);

}  // namespace wharf::agent
