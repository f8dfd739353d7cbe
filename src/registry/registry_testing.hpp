// Test helpers for the registry: a temporary data dir with a real store, blob store and state,
// and a way to wait for the asynchronous completions.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "oci/manifest.hpp"
#include "registry/blob_store.hpp"
#include "registry/registry_state.hpp"
#include "store/store.hpp"

namespace wharf::registry::test_support {

// A fresh directory, removed with everything in it at the end.
class TempDir {
 public:
  explicit TempDir(const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    std::string pattern = (base / "wharf-registry-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Calls `start` with a completion and waits for it.
template <typename T, typename Start>
Result<T> wait_for(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> result) { promise->set_value(std::move(result)); });
  return future.get();
}

inline TimePoint test_epoch() {
  return TimePoint(std::chrono::seconds(1'700'000'000));
}

inline const RepositoryRef kRepo{"us-east-1", "123456789012", "team/app"};

// A registry on disk: SQLite store, blob store and state, all under one temporary dir.
class RegistryFixture {
 public:
  RegistryFixture() : clock(test_epoch()) { open(); }
  ~RegistryFixture() { close(); }

  void open() {
    auto opened_store = store::open_sqlite_store((dir.path() / "wharf.db").string());
    EXPECT_TRUE(opened_store);
    store = std::move(*opened_store);
    auto opened_blobs = BlobStore::open({dir.path() / "registry"}, clock);
    EXPECT_TRUE(opened_blobs);
    blobs = std::move(*opened_blobs);
    state = std::make_unique<RegistryState>(*store, *blobs, clock);
    EXPECT_TRUE(state->load());
  }

  void close() {
    state.reset();
    blobs.reset();
    if (store) store->close();
    store.reset();
  }

  // As after a restart.
  void reopen() {
    close();
    open();
  }

  Result<Repository> create(const RepositoryRef& ref, std::string mutability = "MUTABLE") {
    Repository repository;
    repository.ref = ref;
    repository.tag_mutability = std::move(mutability);
    return wait_for<Repository>(
        [&](auto done) { state->create_repository(repository, std::move(done)); });
  }

  // Stores `bytes` as a blob linked to `ref`.
  oci::Digest blob(const RepositoryRef& ref, std::string_view bytes) {
    auto digest = blobs->put_blob(bytes);
    EXPECT_TRUE(digest);
    auto linked = wait_for<void>(
        [&](auto done) { state->link_blob(ref, *digest, bytes.size(), std::move(done)); });
    EXPECT_TRUE(linked);
    return *digest;
  }

  // An OCI image manifest over a fresh config and one layer, both linked to `ref`.
  std::string image_manifest(const RepositoryRef& ref, std::string_view seed,
                             std::string extra = "") {
    std::string config =
        R"({"architecture":"amd64","os":"linux","seed":")" + std::string(seed) + R"("})";
    std::string layer = "layer bytes " + std::string(seed);
    oci::Digest config_digest = blob(ref, config);
    oci::Digest layer_digest = blob(ref, layer);
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
           config_digest.str() + R"(","size":)" + std::to_string(config.size()) +
           R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
           layer_digest.str() + R"(","size":)" + std::to_string(layer.size()) + "}]" + extra + "}";
  }

  Result<PutImageResult> put(const RepositoryRef& ref, std::string manifest,
                             std::optional<std::string> tag,
                             std::optional<oci::Digest> digest = std::nullopt) {
    return wait_for<PutImageResult>([&](auto done) {
      state->put_image(ref, {std::move(manifest), "", std::move(tag), std::move(digest)},
                       std::move(done));
    });
  }

  TempDir dir;
  ManualClock clock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<RegistryState> state;
};

}  // namespace wharf::registry::test_support
