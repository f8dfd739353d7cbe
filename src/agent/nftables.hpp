// Applies nftables scripts for the networks: in this process through libnftables when it loads,
// else by running `nft -f -`.
#pragma once

#include <chrono>
#include <string_view>

#include "common/error.hpp"

namespace wharf::agent {

// Applies `script` (nft syntax, as `nft -f` reads it) as one transaction. libnftables, loaded
// with dlopen on first use, takes ~0.1 ms where starting nft takes ~2 ms, and a task launch
// applies one or two scripts. Call from a thread in the host's network namespace: the library's
// netlink socket is opened on first use and stays in that namespace. kInternal with nft's own
// message when the script is refused.
Status run_nft_script(std::string_view script);

// As run_nft_script, for a network's set-up or tear-down (once per agent run): through the nft
// program unless the library is loaded already, so that an agent whose tasks never touch
// nftables (networkMode none or host) does not carry it (~1.4 MiB resident).
Status run_nft_setup_script(std::string_view script);

// Frees the library's context when no script has run for `idle`: with it goes nft's cache of
// the kernel's tables (1.2 MB on the heap after a hundred bridge tasks). The next script makes a
// new one. True when one was freed.
bool release_idle_nft_context(std::chrono::steady_clock::duration idle);

// Whether run_nft_script goes through libnftables (loading it if need be; false: through the nft
// program). For tests and logs.
bool nft_in_process();

}  // namespace wharf::agent
