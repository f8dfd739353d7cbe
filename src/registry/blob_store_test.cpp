// Tests for BlobStore: verified installs, upload sessions, crash leftovers, expiry and GC.
#include "registry/blob_store.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "registry/registry_testing.hpp"

namespace wharf::registry {
namespace {

using test_support::TempDir;
using test_support::test_epoch;
namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  explicit BlobStoreTest(const fs::path& base = fs::temp_directory_path()) : dir_(base) {}
  void SetUp() override { reopen(); }
  void reopen() {
    store_.reset();
    auto opened =
        BlobStore::open({dir_.path(), std::chrono::hours(1), std::chrono::hours(1)}, clock_);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
  }
  std::vector<fs::path> files_under(const std::string& sub) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir_.path() / sub)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    return files;
  }
  Result<uint64_t> upload(std::string_view bytes, const oci::Digest& digest) {
    auto id = store_->begin_upload("owner");
    EXPECT_TRUE(id);
    {
      auto writer = store_->writer(*id);
      EXPECT_TRUE(writer);
      EXPECT_TRUE(writer->write(bytes));
    }
    return store_->complete_upload(*id, digest);
  }

  TempDir dir_;
  ManualClock clock_{test_epoch()};
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, ChunkedUploadVerifiesAndInstallsUnderItsDigest) {
  auto id = store_->begin_upload("us-east-1/1/app");
  ASSERT_TRUE(id);
  {
    auto writer = store_->writer(*id, 0);
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->write("hello "));
  }
  {
    auto out_of_order = store_->writer(*id, 3);
    ASSERT_FALSE(out_of_order);
    EXPECT_EQ(out_of_order.error().code, ErrorCode::kInvalidLayerPart);
    auto writer = store_->writer(*id, 6);
    ASSERT_TRUE(writer);
    auto concurrent = store_->writer(*id);
    ASSERT_FALSE(concurrent);
    EXPECT_EQ(concurrent.error().code, ErrorCode::kResourceInUse);
    ASSERT_TRUE(writer->write("world"));
    EXPECT_EQ(writer->size(), 11u);
  }
  auto status = store_->upload_status(*id);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->size, 11u);
  EXPECT_EQ(status->owner, "us-east-1/1/app");

  oci::Digest digest = oci::digest_of("hello world");
  auto size = store_->complete_upload(*id, digest);
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, 11u);
  EXPECT_EQ(store_->size(digest), 11u);
  EXPECT_EQ(*store_->read_blob(digest, 100), "hello world");
  EXPECT_EQ(store_->blob_path(digest).parent_path().filename(), digest.hex.substr(0, 2));
  EXPECT_TRUE(files_under("uploads").empty());
  EXPECT_EQ(store_->upload_status(*id).error().code, ErrorCode::kUploadNotFound);
}

TEST_F(BlobStoreTest, AppendWritesAPartAndReleasesTheSession) {
  auto id = store_->begin_upload("owner");
  EXPECT_EQ(*store_->append(*id, 0, "abc"), 3u);
  EXPECT_EQ(store_->append(*id, 0, "abc").error().code, ErrorCode::kInvalidLayerPart);
  EXPECT_EQ(*store_->append(*id, 3, "def"), 6u);
  EXPECT_EQ(*store_->complete_upload(*id, oci::digest_of("abcdef")), 6u);
}

TEST_F(BlobStoreTest, AMismatchedDigestNeverBecomesVisible) {
  oci::Digest claimed = oci::digest_of("something else");
  auto size = upload("actual bytes", claimed);
  ASSERT_FALSE(size);
  EXPECT_EQ(size.error().code, ErrorCode::kInvalidLayer);
  EXPECT_FALSE(store_->size(claimed));
  EXPECT_FALSE(store_->size(oci::digest_of("actual bytes")));
  EXPECT_TRUE(files_under("blobs").empty());
  EXPECT_TRUE(files_under("uploads").empty());
}

TEST_F(BlobStoreTest, VerifiesSha512ByRehashing) {
  oci::Digest digest = oci::digest_of("sha512 content", "sha512");
  auto size = upload("sha512 content", digest);
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(store_->size(digest), 14u);
  EXPECT_FALSE(upload("sha512 content", oci::digest_of("other", "sha512")));
}

TEST_F(BlobStoreTest, EmptyBlobsAndRepeatedUploadsAreFine) {
  ASSERT_TRUE(upload("", oci::digest_of("")));
  EXPECT_EQ(store_->size(oci::digest_of("")), 0u);
  ASSERT_TRUE(upload("same", oci::digest_of("same")));
  ASSERT_TRUE(upload("same", oci::digest_of("same")));
  EXPECT_EQ(files_under("blobs").size(), 2u);
}

TEST_F(BlobStoreTest, StartRemovesUploadsLeftByACrash) {
  auto id = store_->begin_upload("owner");
  ASSERT_TRUE(id);
  ASSERT_TRUE(store_->writer(*id)->write("partial"));
  std::ofstream(dir_.path() / "uploads" / "stray.put") << "half a blob";
  reopen();
  EXPECT_TRUE(files_under("uploads").empty());
  EXPECT_EQ(store_->upload_count(), 0u);
  EXPECT_EQ(store_->writer(*id).error().code, ErrorCode::kUploadNotFound);
}

TEST_F(BlobStoreTest, CancelAndExpiryRemoveSessions) {
  auto cancelled = store_->begin_upload("owner");
  ASSERT_TRUE(store_->cancel_upload(*cancelled));
  EXPECT_EQ(store_->cancel_upload(*cancelled).error().code, ErrorCode::kUploadNotFound);

  auto idle = store_->begin_upload("owner");
  auto active = store_->begin_upload("owner");
  auto busy = store_->begin_upload("owner");
  clock_.advance(std::chrono::minutes(50));
  ASSERT_TRUE(store_->writer(*active)->write("x"));
  auto holder = store_->writer(*busy);
  ASSERT_TRUE(holder);
  clock_.advance(std::chrono::minutes(20));
  EXPECT_EQ(store_->expire_uploads(), 1u);  // only the idle, unheld one
  EXPECT_EQ(store_->upload_status(*idle).error().code, ErrorCode::kUploadNotFound);
  EXPECT_TRUE(store_->upload_status(*active));
  EXPECT_TRUE(store_->upload_status(*busy));
  EXPECT_EQ(files_under("uploads").size(), 2u);
}

TEST_F(BlobStoreTest, GarbageCollectionSparesReferencedAndYoungBlobs) {
  auto referenced = store_->put_blob("referenced");
  auto unreferenced = store_->put_blob("unreferenced");
  ASSERT_TRUE(referenced && unreferenced);
  auto keep = [&] { return std::set<oci::Digest>{*referenced}; };

  auto young = store_->collect_garbage(keep);
  ASSERT_TRUE(young);
  EXPECT_EQ(young->blobs_removed, 0u) << "inside the grace period";

  clock_.advance(std::chrono::hours(2));
  auto young_again = store_->put_blob("young");
  auto collected = store_->collect_garbage(keep);
  ASSERT_TRUE(collected);
  ASSERT_EQ(collected->removed, std::vector<oci::Digest>{*unreferenced});
  EXPECT_EQ(collected->bytes_removed, 12u);
  EXPECT_TRUE(store_->size(*referenced));
  EXPECT_FALSE(store_->size(*unreferenced));
  EXPECT_TRUE(store_->size(*young_again));
}

TEST_F(BlobStoreTest, ARetainedBlobSurvivesACollectionRacingItsManifest) {
  auto old = store_->put_blob("old layer");
  ASSERT_TRUE(old);
  clock_.advance(std::chrono::hours(2));
  // A manifest push checks the blob while a collection that has not marked it is running:
  // the referenced set is taken before the push's manifest exists.
  auto collected = store_->collect_garbage([&] {
    EXPECT_TRUE(store_->retain(*old));
    return std::set<oci::Digest>{};
  });
  ASSERT_TRUE(collected);
  EXPECT_EQ(collected->blobs_removed, 0u);
  EXPECT_TRUE(store_->size(*old));

  // Once the retention ages out, an unreferenced blob goes.
  clock_.advance(std::chrono::hours(2));
  EXPECT_EQ(store_->collect_garbage([] { return std::set<oci::Digest>{}; })->blobs_removed, 1u);
  EXPECT_FALSE(store_->retain(*old));
}

TEST_F(BlobStoreTest, ReuploadingACollectableBlobRefreshesIt) {
  auto digest = store_->put_blob("layer");
  clock_.advance(std::chrono::hours(2));
  ASSERT_TRUE(upload("layer", *digest));
  EXPECT_EQ(store_->collect_garbage([] { return std::set<oci::Digest>{}; })->blobs_removed, 0u);
}

TEST_F(BlobStoreTest, OpenBlobGivesTheFileAndItsSize) {
  auto digest = store_->put_blob("0123456789");
  auto file = store_->open_blob(*digest);
  ASSERT_TRUE(file);
  EXPECT_EQ(file->size, 10u);
  auto missing = store_->open_blob(oci::digest_of("missing"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kLayersNotFound);
  EXPECT_EQ(store_->read_blob(*digest, 5).error().code, ErrorCode::kInvalidParameter);
}

// Large uploads on disk (/tmp) and on tmpfs (/dev/shm): writers (chunks) that start at an
// aligned offset go through the O_DIRECT pipeline, one that starts elsewhere writes in line;
// pieces of every size, parts smaller than a block, and sessions dropped mid-way.
class LargeUploadTest : public BlobStoreTest, public ::testing::WithParamInterface<const char*> {
 protected:
  LargeUploadTest() : BlobStoreTest(GetParam()) {}
};

TEST_P(LargeUploadTest, BytesAndDigestsComeOutRight) {
  std::string content(11 * 1024 * 1024 + 17, '\0');
  uint32_t state = 12345;
  for (char& byte : content) {
    state = state * 1103515245 + 12345;
    byte = static_cast<char>(state >> 24);
  }
  oci::Digest digest = oci::digest_of(content);
  auto id = store_->begin_upload("owner");
  ASSERT_TRUE(id);
  std::size_t offset = 0;
  // Chunks end at 3 MiB (aligned), 8 MiB + 100 (not aligned), and the end.
  for (std::size_t chunk : {std::size_t{3} << 20, (std::size_t{5} << 20) + 100, content.size()}) {
    auto writer = store_->writer(*id, offset);
    ASSERT_TRUE(writer) << writer.error().message;
    std::size_t end = std::min(chunk + offset, content.size());
    for (std::size_t piece = 1; offset < end; piece = piece * 3 + 1) {
      std::size_t length = std::min({piece % 70000 + 1, end - offset});
      ASSERT_TRUE(writer->write(std::string_view(content).substr(offset, length)));
      offset += length;
    }
    EXPECT_EQ(writer->size(), offset);
    // close() leaves nothing in the pipeline's buffers: the file holds every byte.
    ASSERT_TRUE(writer->close());
    EXPECT_EQ(fs::file_size(dir_.path() / "uploads" / *id), offset);
  }
  auto size = store_->complete_upload(*id, digest);
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, content.size());
  EXPECT_EQ(*store_->read_blob(digest, content.size()), content);

  // A wrong digest is still refused; one ECR-style part, and a part smaller than a block, verify.
  content[5 << 20] ^= 1;
  auto id_wrong = store_->begin_upload("owner");
  EXPECT_EQ(*store_->append(*id_wrong, 0, content), content.size());
  EXPECT_EQ(store_->complete_upload(*id_wrong, digest).error().code, ErrorCode::kInvalidLayer);
  auto part = store_->begin_upload("owner");
  EXPECT_EQ(*store_->append(*part, 0, content), content.size());
  EXPECT_EQ(*store_->complete_upload(*part, oci::digest_of(content)), content.size());
  auto small = store_->begin_upload("owner");
  EXPECT_EQ(*store_->append(*small, 0, "tiny"), 4u);
  EXPECT_EQ(*store_->complete_upload(*small, oci::digest_of("tiny")), 4u);

  // Sessions can be cancelled, expired or left at shutdown after large writes.
  auto cancelled = store_->begin_upload("owner");
  ASSERT_TRUE(store_->writer(*cancelled)->write(content));
  ASSERT_TRUE(store_->cancel_upload(*cancelled));
  auto expired = store_->begin_upload("owner");
  ASSERT_TRUE(store_->writer(*expired)->write(content));
  clock_.advance(std::chrono::hours(2));
  EXPECT_EQ(store_->expire_uploads(), 1u);
  auto left = store_->begin_upload("owner");
  ASSERT_TRUE(store_->writer(*left)->write(content));
  reopen();
  EXPECT_TRUE(fs::is_empty(dir_.path() / "uploads"));
}

INSTANTIATE_TEST_SUITE_P(DirectAndBuffered, LargeUploadTest, ::testing::Values("/tmp", "/dev/shm"));

}  // namespace
}  // namespace wharf::registry
