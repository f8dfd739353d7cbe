// nft scripts through libnftables (dlopen) or, failing that, the nft program.
#include "agent/nftables.hpp"

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "agent/command.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace {

// The few entry points of libnftables' stable API (nftables/libnftables.h), declared here so
// that building needs no -dev package.
struct Libnftables {
  void* (*ctx_new)(unsigned int flags) = nullptr;
  void (*ctx_free)(void* ctx) = nullptr;
  int (*ctx_buffer_output)(void* ctx) = nullptr;
  int (*ctx_buffer_error)(void* ctx) = nullptr;
  const char* (*ctx_get_error_buffer)(void* ctx) = nullptr;
  const char* (*ctx_get_output_buffer)(void* ctx) = nullptr;
  int (*run_cmd_from_buffer)(void* ctx, const char* buffer) = nullptr;
  // The context, with nft's cache of the kernel's tables; made on first use and freed after a
  // while unused (release_idle_nft_context). Both with library_mutex() held.
  void* ctx = nullptr;
  std::chrono::steady_clock::time_point last_used;
};

template <typename Function>
bool bind(void* library, const char* name, Function*& function) {
  function = reinterpret_cast<Function*>(::dlsym(library, name));
  return function != nullptr;
}

std::atomic<bool> library_loaded{false};

// The library's context, made if need be; with library_mutex() held. nullptr when libnftables
// cannot make one.
void* context(Libnftables& nft) {
  if (nft.ctx != nullptr) return nft.ctx;
  nft.ctx = nft.ctx_new(0);
  if (nft.ctx == nullptr) return nullptr;
  // Output and errors into buffers, read after each command, instead of onto stdout/stderr.
  nft.ctx_buffer_output(nft.ctx);
  nft.ctx_buffer_error(nft.ctx);
  return nft.ctx;
}

// The loaded library, or nullptr when it is not installed.
Libnftables* library() {
  static Libnftables* loaded = []() -> Libnftables* {
    void* handle = ::dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      spdlog::info("libnftables not found ({}); running nft for each change", ::dlerror());
      return nullptr;
    }
    static Libnftables api;
    bool complete = bind(handle, "nft_ctx_new", api.ctx_new) &&
                    bind(handle, "nft_ctx_free", api.ctx_free) &&
                    bind(handle, "nft_ctx_buffer_output", api.ctx_buffer_output) &&
                    bind(handle, "nft_ctx_buffer_error", api.ctx_buffer_error) &&
                    bind(handle, "nft_ctx_get_error_buffer", api.ctx_get_error_buffer) &&
                    bind(handle, "nft_ctx_get_output_buffer", api.ctx_get_output_buffer) &&
                    bind(handle, "nft_run_cmd_from_buffer", api.run_cmd_from_buffer);
    if (!complete) {
      spdlog::info("libnftables lacks an entry point; running nft for each change");
      return nullptr;
    }
    // The first context now (no other thread sees `api` yet), so that a library that cannot
    // make one is not used at all.
    if (context(api) == nullptr) return nullptr;
    library_loaded = true;
    return &api;
  }();
  return loaded;
}

std::mutex& library_mutex() {
  static std::mutex mutex;  // one context, used by one thread at a time
  return mutex;
}

Status run_nft_program(std::string_view script) {
  auto done = run_checked({"nft", "-f", "-"}, script);
  if (!done) return std::unexpected(done.error());
  return {};
}

}  // namespace

bool nft_in_process() {
  return library() != nullptr;
}

Status run_nft_setup_script(std::string_view script) {
  if (script.empty()) return {};
  if (library_loaded) return run_nft_script(script);
  return run_nft_program(script);
}

Status run_nft_script(std::string_view script) {
  if (script.empty()) return {};
  Libnftables* nft = library();
  if (nft == nullptr) return run_nft_program(script);
  std::string text(script);
  std::unique_lock lock(library_mutex());
  void* ctx = context(*nft);
  if (ctx == nullptr) {
    lock.unlock();
    return run_nft_program(script);
  }
  nft->last_used = std::chrono::steady_clock::now();
  int failed = nft->run_cmd_from_buffer(ctx, text.c_str());
  // Reading a buffer also empties it for the next command.
  std::string error = nft->ctx_get_error_buffer(ctx);
  (void)nft->ctx_get_output_buffer(ctx);
  if (failed == 0) return {};
  std::string message = "nftables refused the change";
  if (std::string_view details = trim(error); !details.empty()) {
    message += ": " + std::string(details);
  }
  return fail(ErrorCode::kInternal, std::move(message));
}

bool release_idle_nft_context(std::chrono::steady_clock::duration idle) {
  if (!library_loaded) return false;
  Libnftables* nft = library();
  std::lock_guard lock(library_mutex());
  if (nft->ctx == nullptr || std::chrono::steady_clock::now() - nft->last_used < idle) {
    return false;
  }
  nft->ctx_free(nft->ctx);
  nft->ctx = nullptr;
  return true;
}

}  // namespace wharf::agent
