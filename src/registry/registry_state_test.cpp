// Tests for RegistryState: names and tags, repositories, image pushes and their checks,
// untag/delete, blob links, pull times, scan results, hooks and reloading from the store.
#include "registry/registry_state.hpp"

#include <gtest/gtest.h>

#include "registry/registry_testing.hpp"

namespace wharf::registry {
namespace {

using test_support::kRepo;
using test_support::RegistryFixture;
using test_support::wait_for;

TEST(RepositoryNameTest, FollowsTheDistributionGrammar) {
  struct Case {
    std::string name;
    bool valid;
  };
  std::vector<Case> cases = {
      {"app", true},
      {"a", true},
      {"team/app", true},
      {"a/b/c/d", true},
      {"my-app", true},
      {"my--app", true},
      {"my_app", true},
      {"my__app", true},
      {"my.app", true},
      {"app2/v1.0", true},
      {"", false},
      {"App", false},
      {"my___app", false},
      {"my..app", false},
      {"..", false},
      {"../etc", false},
      {"team/../app", false},
      {".app", false},
      {"app.", false},
      {"-app", false},
      {"app-", false},
      {"/app", false},
      {"app/", false},
      {"team//app", false},
      {"team%2fapp", false},
      {"%2e%2e", false},
      {"app name", false},
      {"app:tag", false},
      {"app@sha256", false},
      {std::string(255, 'a'), true},
      {std::string(256, 'a'), false},
  };
  for (const Case& test : cases) {
    EXPECT_EQ(validate_repository_name(test.name).has_value(), test.valid) << test.name;
  }
}

TEST(TagTest, FollowsTheDistributionGrammar) {
  for (const std::string& tag :
       std::vector<std::string>{"latest", "v1.0.0", "V_1-2", "_x", std::string(128, 'a')}) {
    EXPECT_TRUE(validate_tag(tag)) << tag;
  }
  for (const std::string& tag :
       std::vector<std::string>{"", ".x", "-x", "a/b", "a:b", "a@b", std::string(129, 'a')}) {
    auto status = validate_tag(tag);
    ASSERT_FALSE(status) << tag;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidTagParameter);
  }
}

TEST(TagMutabilityTest, ExclusionFiltersFlipTheRule) {
  Repository repository;
  EXPECT_FALSE(repository.tag_is_immutable("v1"));
  repository.tag_mutability = kImmutable;
  EXPECT_TRUE(repository.tag_is_immutable("v1"));
  repository.tag_mutability = kImmutableWithExclusion;
  repository.tag_mutability_exclusions = {"latest", "dev-*"};
  EXPECT_FALSE(repository.tag_is_immutable("latest"));
  EXPECT_FALSE(repository.tag_is_immutable("dev-42"));
  EXPECT_TRUE(repository.tag_is_immutable("v1"));
  repository.tag_mutability = kMutableWithExclusion;
  EXPECT_TRUE(repository.tag_is_immutable("dev-42"));
  EXPECT_FALSE(repository.tag_is_immutable("v1"));
}

class RegistryStateTest : public ::testing::Test {
 protected:
  RegistryFixture registry_;
};

TEST_F(RegistryStateTest, CreatesListsUpdatesAndDeletesRepositories) {
  auto created = registry_.create(kRepo);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->arn, "arn:aws:ecr:us-east-1:123456789012:repository/team/app");
  EXPECT_EQ(created->created_at, test_support::test_epoch());
  EXPECT_EQ(registry_.create(kRepo).error().code, ErrorCode::kRepositoryAlreadyExists);
  EXPECT_EQ(registry_.create({"us-east-1", "1", "Bad"}).error().code, ErrorCode::kInvalidParameter);
  ASSERT_TRUE(registry_.create({"us-east-1", "123456789012", "another"}));
  ASSERT_TRUE(registry_.create({"eu-west-1", "123456789012", "elsewhere"}));

  auto listed = registry_.state->list_repositories("us-east-1", "123456789012");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].ref.name, "another");

  auto updated = wait_for<Repository>([&](auto done) {
    registry_.state->update_repository(
        kRepo,
        [](Repository& repository) -> Status {
          repository.policy = R"({"Statement":[]})";
          repository.tags["team"] = "platform";
          repository.scan_on_push = true;
          return {};
        },
        std::move(done));
  });
  ASSERT_TRUE(updated);
  EXPECT_TRUE(updated->scan_on_push);
  auto refused = wait_for<Repository>([&](auto done) {
    registry_.state->update_repository(
        kRepo,
        [](Repository&) -> Status { return fail(ErrorCode::kRepositoryPolicyNotFound, "no"); },
        std::move(done));
  });
  EXPECT_EQ(refused.error().code, ErrorCode::kRepositoryPolicyNotFound);

  registry_.reopen();
  auto reloaded = registry_.state->repository(kRepo);
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->tags.at("team"), "platform");
  EXPECT_EQ(*reloaded->policy, R"({"Statement":[]})");
  EXPECT_TRUE(reloaded->scan_on_push);
  EXPECT_EQ(reloaded->created_at, test_support::test_epoch());

  auto deleted = wait_for<Repository>(
      [&](auto done) { registry_.state->delete_repository(kRepo, false, std::move(done)); });
  ASSERT_TRUE(deleted);
  EXPECT_EQ(registry_.state->repository(kRepo).error().code, ErrorCode::kRepositoryNotFound);
}

TEST_F(RegistryStateTest, PushStoresTheManifestAndItsFacts) {
  ASSERT_TRUE(registry_.create(kRepo));
  std::string manifest = registry_.image_manifest(kRepo, "one");
  auto pushed = registry_.put(kRepo, manifest, "v1");
  ASSERT_TRUE(pushed) << pushed.error().message;
  EXPECT_FALSE(pushed->unchanged);
  const Image& image = pushed->image;
  EXPECT_EQ(image.digest, oci::digest_of(manifest));
  EXPECT_EQ(*image.manifest, manifest);
  EXPECT_EQ(image.media_type, oci::kOciManifest);
  EXPECT_EQ(image.tags, std::vector<std::string>{"v1"});
  EXPECT_EQ(image.artifact_media_type(), oci::kOciImageConfig);
  EXPECT_EQ(image.size_in_bytes, image.parsed->blob_bytes());
  EXPECT_GT(image.size_in_bytes, 0);

  auto again = registry_.put(kRepo, manifest, "v1");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->unchanged);

  auto by_tag = registry_.state->find_image(kRepo, {std::nullopt, "v1"});
  ASSERT_TRUE(by_tag);
  EXPECT_EQ(by_tag->digest, image.digest);
  auto mismatch = registry_.state->find_image(kRepo, {oci::digest_of("x"), "v1"});
  EXPECT_EQ(mismatch.error().code, ErrorCode::kImageNotFound);

  registry_.reopen();
  auto reloaded = registry_.state->find_image(kRepo, {image.digest, std::nullopt});
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(*reloaded->manifest, manifest);
  EXPECT_EQ(reloaded->tags, std::vector<std::string>{"v1"});
  EXPECT_EQ(reloaded->size_in_bytes, image.size_in_bytes);
  EXPECT_EQ(reloaded->pushed_at, test_support::test_epoch());
}

TEST_F(RegistryStateTest, PushChecksBlobsChildrenDigestAndTags) {
  ASSERT_TRUE(registry_.create(kRepo));
  RepositoryRef other{"us-east-1", "123456789012", "other"};
  ASSERT_TRUE(registry_.create(other));

  // Blobs linked to another repository do not count.
  std::string foreign = registry_.image_manifest(other, "foreign");
  EXPECT_EQ(registry_.put(kRepo, foreign, "v1").error().code, ErrorCode::kLayersNotFound);

  std::string manifest = registry_.image_manifest(kRepo, "mine");
  oci::Digest digest = oci::digest_of(manifest);
  EXPECT_EQ(registry_.put(kRepo, manifest, std::nullopt, oci::digest_of("x")).error().code,
            ErrorCode::kImageDigestDoesNotMatch);
  EXPECT_EQ(registry_.put(kRepo, manifest, "bad/tag").error().code,
            ErrorCode::kInvalidTagParameter);
  EXPECT_EQ(registry_.put(kRepo, "{", "v1").error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(registry_.put({"us-east-1", "123456789012", "missing"}, manifest, "v1").error().code,
            ErrorCode::kRepositoryNotFound);
  ASSERT_TRUE(registry_.put(kRepo, manifest, std::nullopt, digest));

  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":")" +
                      digest.str() + R"(","size":)" + std::to_string(manifest.size()) + "}]}";
  std::string dangling = index;
  dangling.replace(dangling.find(digest.hex), digest.hex.size(), std::string(64, 'f'));
  EXPECT_EQ(registry_.put(kRepo, dangling, "multi").error().code,
            ErrorCode::kReferencedImagesNotFound);
  auto pushed_index = registry_.put(kRepo, index, "multi");
  ASSERT_TRUE(pushed_index) << pushed_index.error().message;
  EXPECT_EQ(pushed_index->image.size_in_bytes,
            registry_.state->find_image(kRepo, {digest, {}})->size_in_bytes);
  EXPECT_TRUE(pushed_index->image.artifact_media_type().empty());
}

TEST_F(RegistryStateTest, ImmutableTagsCannotMove) {
  ASSERT_TRUE(registry_.create(kRepo, "IMMUTABLE"));
  std::string first = registry_.image_manifest(kRepo, "first");
  std::string second = registry_.image_manifest(kRepo, "second");
  ASSERT_TRUE(registry_.put(kRepo, first, "v1"));
  ASSERT_TRUE(registry_.put(kRepo, first, "v1")) << "the same image again is fine";
  auto moved = registry_.put(kRepo, second, "v1");
  ASSERT_FALSE(moved);
  EXPECT_EQ(moved.error().code, ErrorCode::kImageTagAlreadyExists);
  EXPECT_NE(moved.error().message.find("immutable"), std::string::npos);
  ASSERT_TRUE(registry_.put(kRepo, second, "v2"));
}

TEST_F(RegistryStateTest, MutableTagsMoveAndLeaveTheOldImageUntagged) {
  ASSERT_TRUE(registry_.create(kRepo));
  std::string first = registry_.image_manifest(kRepo, "first");
  std::string second = registry_.image_manifest(kRepo, "second");
  auto old_image = registry_.put(kRepo, first, "latest");
  ASSERT_TRUE(registry_.put(kRepo, second, "latest"));
  auto old_after = registry_.state->find_image(kRepo, {old_image->image.digest, {}});
  ASSERT_TRUE(old_after);
  EXPECT_TRUE(old_after->tags.empty());
  registry_.reopen();
  EXPECT_TRUE(registry_.state->find_image(kRepo, {old_image->image.digest, {}})->tags.empty());
  EXPECT_EQ(*registry_.state->list_tags(kRepo), std::vector<std::string>{"latest"});
}

TEST_F(RegistryStateTest, RemovingByTagUntagsAndByDigestDeletes) {
  ASSERT_TRUE(registry_.create(kRepo));
  std::string manifest = registry_.image_manifest(kRepo, "x");
  auto pushed = registry_.put(kRepo, manifest, "a");
  ASSERT_TRUE(registry_.put(kRepo, manifest, "b"));
  oci::Digest digest = pushed->image.digest;

  auto remove = [&](ImageSelector selector, RemoveImageOptions options) {
    return wait_for<RemoveImageResult>([&](auto done) {
      registry_.state->remove_image(kRepo, selector, options, std::move(done));
    });
  };
  auto untagged = remove({std::nullopt, "a"}, {});
  ASSERT_TRUE(untagged);
  EXPECT_FALSE(untagged->deleted);
  EXPECT_EQ(untagged->removed_tags, std::vector<std::string>{"a"});
  EXPECT_EQ(registry_.state->find_image(kRepo, {digest, {}})->tags, std::vector<std::string>{"b"});

  auto last_tag = remove({std::nullopt, "b"}, {.delete_when_last_tag_removed = true});
  ASSERT_TRUE(last_tag);
  EXPECT_TRUE(last_tag->deleted);
  EXPECT_EQ(registry_.state->find_image(kRepo, {digest, {}}).error().code,
            ErrorCode::kImageNotFound);

  ASSERT_TRUE(registry_.put(kRepo, manifest, "c"));
  auto deleted = remove({digest, std::nullopt}, {});
  ASSERT_TRUE(deleted);
  EXPECT_TRUE(deleted->deleted);
  EXPECT_EQ(deleted->removed_tags, std::vector<std::string>{"c"});
  EXPECT_TRUE(registry_.state->list_tags(kRepo)->empty());
  EXPECT_EQ(remove({digest, std::nullopt}, {}).error().code, ErrorCode::kImageNotFound);
  registry_.reopen();
  EXPECT_TRUE(registry_.state->list_images(kRepo)->empty());
}

TEST_F(RegistryStateTest, DeletingARepositoryWithImagesNeedsForce) {
  ASSERT_TRUE(registry_.create(kRepo));
  ASSERT_TRUE(registry_.put(kRepo, registry_.image_manifest(kRepo, "x"), "v1"));
  auto refused = wait_for<Repository>(
      [&](auto done) { registry_.state->delete_repository(kRepo, false, std::move(done)); });
  EXPECT_EQ(refused.error().code, ErrorCode::kRepositoryNotEmpty);
  auto forced = wait_for<Repository>(
      [&](auto done) { registry_.state->delete_repository(kRepo, true, std::move(done)); });
  ASSERT_TRUE(forced);
  EXPECT_TRUE(registry_.state->referenced_blobs().empty());
  registry_.reopen();
  EXPECT_EQ(registry_.state->image_count(), 0u);
  ASSERT_TRUE(registry_.create(kRepo));
  EXPECT_TRUE(registry_.state->list_images(kRepo)->empty());
}

TEST_F(RegistryStateTest, ReferrersFollowSubjects) {
  ASSERT_TRUE(registry_.create(kRepo));
  auto subject = registry_.put(kRepo, registry_.image_manifest(kRepo, "subject"), "v1");
  std::string extra = R"(,"artifactType":"application/vnd.example.sig","subject":{"mediaType":)"
                      R"("application/vnd.oci.image.manifest.v1+json","digest":")" +
                      subject->image.digest.str() + R"(","size":1})";
  auto referrer = registry_.put(kRepo, registry_.image_manifest(kRepo, "sig", extra), std::nullopt);
  ASSERT_TRUE(referrer);
  EXPECT_EQ(*referrer->image.subject(), subject->image.digest);
  auto listed = registry_.state->referrers(kRepo, subject->image.digest);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().digest, referrer->image.digest);
  registry_.reopen();
  EXPECT_EQ(registry_.state->referrers(kRepo, subject->image.digest)->size(), 1u);
}

TEST_F(RegistryStateTest, PullTimesAreRecordedAndCoalesced) {
  ASSERT_TRUE(registry_.create(kRepo));
  auto pushed = registry_.put(kRepo, registry_.image_manifest(kRepo, "x"), "v1");
  oci::Digest digest = pushed->image.digest;
  EXPECT_FALSE(pushed->image.last_pulled_at);
  registry_.state->record_pull(kRepo, digest);
  registry_.clock.advance(std::chrono::seconds(10));
  registry_.state->record_pull(kRepo, digest);  // memory only: written within the minute
  EXPECT_EQ(*registry_.state->find_image(kRepo, {digest, {}})->last_pulled_at,
            test_support::test_epoch() + std::chrono::seconds(10));
  registry_.reopen();
  EXPECT_EQ(*registry_.state->find_image(kRepo, {digest, {}})->last_pulled_at,
            test_support::test_epoch());
}

TEST_F(RegistryStateTest, ScanResultsAndHooks) {
  ASSERT_TRUE(registry_.create(kRepo));
  std::vector<std::string> pushed_tags;
  registry_.state->add_push_hook([&](const Repository& repository, const Image& image) {
    EXPECT_EQ(repository.ref, kRepo);
    pushed_tags.push_back(image.tags.empty() ? "" : image.tags.front());
  });
  std::string manifest = registry_.image_manifest(kRepo, "x");
  auto pushed = registry_.put(kRepo, manifest, "v1");
  ASSERT_TRUE(registry_.put(kRepo, manifest, "v1"));  // unchanged: no hook
  EXPECT_EQ(pushed_tags, std::vector<std::string>{"v1"});

  oci::Digest digest = pushed->image.digest;
  EXPECT_FALSE(*registry_.state->scan_result(kRepo, digest));
  ASSERT_TRUE(wait_for<void>([&](auto done) {
    registry_.state->set_scan_result(kRepo, digest, R"({"status":"COMPLETE"})", std::move(done));
  }));
  registry_.reopen();
  EXPECT_EQ(**registry_.state->scan_result(kRepo, digest), R"({"status":"COMPLETE"})");
}

TEST_F(RegistryStateTest, BlobLinksAndForgettingCollectedBlobs) {
  ASSERT_TRUE(registry_.create(kRepo));
  oci::Digest digest = registry_.blob(kRepo, "layer");
  EXPECT_EQ(**registry_.state->linked_blob(kRepo, digest), 5u);
  EXPECT_FALSE(*registry_.state->linked_blob(kRepo, oci::digest_of("other")));

  // Collected from disk: the link reports nothing and forget_blobs drops it durably.
  std::filesystem::remove(registry_.blobs->blob_path(digest));
  EXPECT_FALSE(*registry_.state->linked_blob(kRepo, digest));
  registry_.state->forget_blobs({digest});
  registry_.reopen();
  oci::Digest again = *registry_.blobs->put_blob("layer");
  EXPECT_FALSE(*registry_.state->linked_blob(kRepo, again));

  oci::Digest kept = registry_.blob(kRepo, "kept");
  EXPECT_TRUE(wait_for<void>(
      [&](auto done) { registry_.state->unlink_blob(kRepo, kept, std::move(done)); }));
  EXPECT_EQ(
      wait_for<void>([&](auto done) { registry_.state->unlink_blob(kRepo, kept, std::move(done)); })
          .error()
          .code,
      ErrorCode::kLayersNotFound);
}

}  // namespace
}  // namespace wharf::registry
