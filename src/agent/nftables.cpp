// nft scripts through libnftables (dlopen) or, failing that, the nft program.
#include "agent/nftables.hpp"

#include <dlfcn.h>

#include <atomic>
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
  void* ctx = nullptr;
};

template <typename Function>
bool bind(void* library, const char* name, Function*& function) {
  function = reinterpret_cast<Function*>(::dlsym(library, name));
  return function != nullptr;
}

std::atomic<bool> library_loaded{false};

// The loaded library with one context, or nullptr when it is not installed.
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
    api.ctx = api.ctx_new(0);
    if (api.ctx == nullptr) return nullptr;
    // Output and errors into buffers, read after each command, instead of onto stdout/stderr.
    api.ctx_buffer_output(api.ctx);
    api.ctx_buffer_error(api.ctx);
    library_loaded = true;
    return &api;
  }();
  return loaded;
}

Status run_nft_program(std::string_view script) {
  auto done = run_checked({"nft", "-f", "-"}, script);
  if (!done) return std::unexpected(done.error());
  return {};
}

std::mutex& library_mutex() {
  static std::mutex mutex;  // one context, used by one thread at a time
  return mutex;
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
  std::lock_guard lock(library_mutex());
  int failed = nft->run_cmd_from_buffer(nft->ctx, text.c_str());
  // Reading a buffer also empties it for the next command.
  std::string error = nft->ctx_get_error_buffer(nft->ctx);
  (void)nft->ctx_get_output_buffer(nft->ctx);
  if (failed == 0) return {};
  std::string message = "nftables refused the change";
  if (std::string_view details = trim(error); !details.empty()) {
    message += ": " + std::string(details);
  }
  return fail(ErrorCode::kInternal, std::move(message));
}

}  // namespace wharf::agent
