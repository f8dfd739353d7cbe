// Image store: config parsing, pull behaviours against a real docker-registry, clean-up.
#include "agent/image_store.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <fcntl.h>

#include <cstdlib>
#include <sstream>
#include <thread>

#include "agent/init_layer.hpp"
#include "agent/process_reaper.hpp"
#include "agent/test_layers.hpp"
#include "common/unique_fd.hpp"
#include "oci/image_builder.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kDiffA =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr std::string_view kDiffB =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

TEST(ParseImageConfig, ReadsTheRuntimeConfigAndDiffIds) {
  auto parsed =
      parse_image_config(R"({
    "architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin"],
               "WorkingDir": "/srv", "User": "1000:1000",
               "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"team": "wharf"}},
    "rootfs": {"type": "layers", "diff_ids": [")" +
                         std::string(kDiffA) + R"(", ")" + std::string(kDiffB) + R"("]}})");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->config.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(parsed->config.cmd, (std::vector<std::string>{"echo hi"}));
  EXPECT_EQ(parsed->config.env, (std::vector<std::string>{"PATH=/bin"}));
  EXPECT_EQ(parsed->config.working_dir, "/srv");
  EXPECT_EQ(parsed->config.user, "1000:1000");
  EXPECT_EQ(parsed->config.exposed_ports, (std::vector<std::string>{"80/tcp", "53/udp"}));
  EXPECT_EQ(parsed->config.labels, (std::map<std::string, std::string>{{"team", "wharf"}}));
  ASSERT_EQ(parsed->diff_ids.size(), 2u);
  EXPECT_EQ(parsed->diff_ids[0].str(), kDiffA);  // base layer first
  EXPECT_EQ(parsed->diff_ids[1].str(), kDiffB);
}

TEST(ParseImageConfig, MissingAndNullFieldsAreEmpty) {
  for (std::string text : {R"({"rootfs": {"type": "layers", "diff_ids": []}})",
                           R"({"config": null, "rootfs": {"diff_ids": []}})",
                           R"({"config": {"Cmd": null, "Env": null, "Labels": null,
                                          "ExposedPorts": null, "WorkingDir": null},
                               "rootfs": {"type": "layers", "diff_ids": []}})"}) {
    auto parsed = parse_image_config(text);
    ASSERT_TRUE(parsed.has_value()) << text << ": " << parsed.error().message;
    EXPECT_TRUE(parsed->config.cmd.empty());
    EXPECT_TRUE(parsed->config.env.empty());
    EXPECT_TRUE(parsed->config.labels.empty());
    EXPECT_TRUE(parsed->config.working_dir.empty());
    EXPECT_TRUE(parsed->diff_ids.empty());
  }
}

TEST(ParseImageConfig, RefusesMalformedConfigs) {
  struct Case {
    std::string json;
    std::string error;  // a part of the message
  };
  std::string layers = R"("rootfs": {"type": "layers", "diff_ids": []})";
  std::vector<Case> cases = {
      {"not json", "not JSON"},
      {"[]", "not a JSON object"},
      {R"({"config": {}})", "rootfs is missing"},
      {R"({"rootfs": {"type": "layers"}})", "rootfs.diff_ids is missing"},
      {R"({"rootfs": {"type": "overlay", "diff_ids": []}})", "rootfs.type"},
      {R"({"rootfs": {"diff_ids": ["sha256:abc"]}})", "rootfs.diff_ids[0]"},
      {R"({"rootfs": {"diff_ids": [")" + std::string(kDiffA) + R"(", "md5:00"]}})",
       "rootfs.diff_ids[1]"},
      {R"({"rootfs": {"diff_ids": [7]}})", "rootfs.diff_ids[0] is not a string"},
      {R"({"config": [], )" + layers + "}", "config is not an object"},
      {R"({"config": {"Cmd": "echo hi"}, )" + layers + "}", "Cmd is not an array"},
      {R"({"config": {"Env": ["A=1", 2]}, )" + layers + "}", "Env is not an array"},
      {R"({"config": {"WorkingDir": 1}, )" + layers + "}", "WorkingDir is not a string"},
      {R"({"config": {"ExposedPorts": ["80/tcp"]}, )" + layers + "}", "ExposedPorts"},
      {R"({"config": {"Labels": {"a": 1}}, )" + layers + "}", "Labels"},
  };
  for (const Case& bad : cases) {
    auto parsed = parse_image_config(bad.json);
    ASSERT_FALSE(parsed.has_value()) << bad.json;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidParameter) << bad.json;
    EXPECT_NE(parsed.error().message.find(bad.error), std::string::npos)
        << bad.json << ": " << parsed.error().message;
  }
}

TEST(ParsePullBehavior, NamesAsEcsSpellsThem) {
  EXPECT_EQ(parse_pull_behavior("default"), PullBehavior::kDefault);
  EXPECT_EQ(parse_pull_behavior("always"), PullBehavior::kAlways);
  EXPECT_EQ(parse_pull_behavior("once"), PullBehavior::kOnce);
  EXPECT_EQ(parse_pull_behavior("prefer-cached"), PullBehavior::kPreferCached);
  for (std::string_view bad : {"", "Always", "prefer_cached", "never"}) {
    auto parsed = parse_pull_behavior(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidParameter);
  }
  EXPECT_EQ(to_string(PullBehavior::kPreferCached), "prefer-cached");
}

// The image index as the store last saved it.
std::string saved_index(const Layout& layout) {
  auto text = StateFile(layout.image_index_file()).read();
  if (!text || !*text) return "";
  return **text;
}

class ImageStoreLoadTest : public testkit::DataDirTest {};

TEST_F(ImageStoreLoadTest, RemovesImagesWithMissingFilesOrLayers) {
  auto digest = oci::parse_digest(kDiffA);
  ASSERT_TRUE(digest.has_value());
  fs::create_directories(layout().image_dir(*digest));
  std::ofstream(layout().image_manifest_file(*digest)) << "{}";
  std::ofstream(layout().images_dir() / "index.json") << "not json";
  ManualClock clock(TimePoint{} + 1000h);
  ImageStore store(layout(), {}, clock);
  auto loaded = store.load();
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_TRUE(store.images().empty());
  EXPECT_FALSE(fs::exists(layout().image_dir(*digest)));
  auto index = boost::json::parse(saved_index(layout()));
  EXPECT_TRUE(index.as_object().at("images").as_object().empty());
}

uint16_t free_port() {
  UniqueFd socket_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return 0;
  }
  return ntohs(address.sin_port);
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path == nullptr ? "/usr/bin:/bin" : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (::access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Debian's docker-registry on a free loopback port, its storage under the test's directory.
class ImageStoreTest : public testkit::DataDirTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "unpacking layers needs root";
    if (!on_path("docker-registry")) GTEST_SKIP() << "needs docker-registry (Debian package)";
    DataDirTest::SetUp();
    if (HasFatalFailure()) return;
    host_ = "127.0.0.1:" + std::to_string(free_port());
    fs::create_directories(root_ / "registry");
    std::ofstream(root_ / "registry/config.yml")
        << "version: 0.1\n"
        << "log: {level: info, accesslog: {disabled: true}}\n"  // info: each request and its remote
                                                                // address
        << "storage: {filesystem: {rootdirectory: " << (root_ / "registry/data").string()
        << "}, delete: {enabled: true}}\n"
        << "http: {addr: \"" << host_ << "\", secret: test}\n";
    start_registry();
  }

  void TearDown() override {
    stop_registry();
    DataDirTest::TearDown();
  }

  void start_registry() {
    UniqueFd log(
        ::open((root_ / "registry/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    ASSERT_TRUE(log);
    auto pid = ProcessReaper::instance().spawn(
        {"docker-registry", "serve", (root_ / "registry/config.yml").string()},
        ChildIo{.stdout_fd = log.get(), .stderr_fd = log.get()});
    ASSERT_TRUE(pid.has_value()) << pid.error().message;
    registry_pid_ = *pid;
    oci::RegistryClient client;
    for (int attempt = 0; attempt < 400; ++attempt) {
      if (client.ping(host_)) return;
      auto exited = ProcessReaper::instance().wait(registry_pid_, 0ms);
      ASSERT_TRUE(exited.has_value() && !exited->has_value())
          << "docker-registry exited: " << testkit::read_file(root_ / "registry/log");
      std::this_thread::sleep_for(50ms);  // waiting for a process to start, not for a timeout
    }
    FAIL() << "docker-registry did not start: " << testkit::read_file(root_ / "registry/log");
  }

  void stop_registry() {
    if (registry_pid_ <= 0) return;
    ProcessReaper& reaper = ProcessReaper::instance();
    ::kill(registry_pid_, SIGTERM);
    auto exited = reaper.wait(registry_pid_, 10s);
    if (exited && !exited->has_value()) {
      ::kill(registry_pid_, SIGKILL);
      (void)reaper.wait(registry_pid_, std::nullopt);
    }
    reaper.forget(registry_pid_);
    registry_pid_ = -1;
  }

  // A one-layer image holding /hello with `greeting`.
  oci::BuiltImage build(const std::string& greeting) {
    fs::path tree = root_ / "trees" / greeting;
    fs::create_directories(tree / "bin");
    std::ofstream(tree / "hello") << greeting;
    oci::ImageBuildOptions options;
    options.mtime = TimePoint{};
    options.config.cmd = {"/bin/hello"};
    options.config.env = {"GREETING=" + greeting};
    options.config.working_dir = "/srv";
    options.config.exposed_ports = {"80/tcp"};
    options.temp_parent = root_;
    auto built = oci::build_image(tree, options);
    EXPECT_TRUE(built.has_value()) << built.error().message;
    return std::move(*built);
  }

  oci::BuiltImage push(const std::string& repo_and_tag, const std::string& greeting) {
    oci::BuiltImage built = build(greeting);
    auto pushed = oci::push_image(client_, reference(repo_and_tag), built);
    EXPECT_TRUE(pushed.has_value()) << pushed.error().message;
    return built;
  }

  // Pushes an image of the layers of `bases`, in order; returns its manifest digest.
  oci::Digest push_stacked(const std::string& repo_and_tag,
                           const std::vector<const oci::BuiltImage*>& bases) {
    boost::json::array diff_ids;
    boost::json::array layers;
    for (const oci::BuiltImage* base : bases) {
      diff_ids.emplace_back(base->diff_id.str());
      layers.emplace_back(descriptor(base->layer));
      EXPECT_TRUE(client_.push_blob(reference(repo_and_tag), base->layer.source()).has_value());
    }
    std::string config = boost::json::serialize(
        boost::json::object{{"architecture", "amd64"},
                            {"os", "linux"},
                            {"config", {{"Cmd", {"/bin/stacked"}}}},
                            {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}});
    fs::path config_path = root_ / "stacked-config.json";
    std::ofstream(config_path) << config;
    oci::BuiltBlob config_blob{std::string(oci::kOciImageConfig), oci::digest_of(config),
                               config.size(), config_path};
    EXPECT_TRUE(client_.push_blob(reference(repo_and_tag), config_blob.source()).has_value());
    std::string manifest =
        boost::json::serialize(boost::json::object{{"schemaVersion", 2},
                                                   {"mediaType", oci::kOciManifest},
                                                   {"config", descriptor(config_blob)},
                                                   {"layers", layers}});
    auto pushed = client_.push_manifest(reference(repo_and_tag), oci::kOciManifest, manifest);
    EXPECT_TRUE(pushed.has_value()) << pushed.error().message;
    return pushed.value_or(oci::Digest{});
  }

  static boost::json::object descriptor(const oci::BuiltBlob& blob) {
    return {{"mediaType", blob.media_type}, {"digest", blob.digest.str()}, {"size", blob.size}};
  }

  oci::Reference reference(const std::string& repo_and_tag) const {
    auto parsed = oci::parse_reference(ref(repo_and_tag));
    EXPECT_TRUE(parsed.has_value());
    return parsed.value_or(oci::Reference{});
  }

  std::string ref(const std::string& repo_and_tag) const { return host_ + "/" + repo_and_tag; }

  std::unique_ptr<ImageStore> store(PullBehavior behavior, ImageStoreOptions options = {}) {
    options.behavior = behavior;
    auto made = std::make_unique<ImageStore>(layout(), options, clock_);
    auto loaded = made->load();
    EXPECT_TRUE(loaded.has_value()) << loaded.error().message;
    return made;
  }

  // The layer sizes the store recorded in its index.
  uint64_t recorded_layer_bytes(const oci::Digest& diff_id) {
    auto index = boost::json::parse(saved_index(layout()));
    return index.at("layers").at(diff_id.str()).to_number<uint64_t>();
  }

  std::string host_;
  pid_t registry_pid_ = -1;
  oci::RegistryClient client_;
  ManualClock clock_{TimePoint{} + 480000h};
};

TEST_F(ImageStoreTest, PullsUnpacksAndFallsBackToTheCache) {
  oci::BuiltImage built = push("web:v1", "hello v1");
  auto defaults = store(PullBehavior::kDefault);
  auto image = defaults->ensure(ref("web:v1"));
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->reference, ref("web:v1"));
  EXPECT_EQ(image->manifest_digest, built.manifest_digest);
  EXPECT_EQ(image->diff_ids, std::vector<oci::Digest>{built.diff_id});
  EXPECT_EQ(image->config.cmd, std::vector<std::string>{"/bin/hello"});
  EXPECT_EQ(image->config.env, std::vector<std::string>{"GREETING=hello v1"});
  EXPECT_EQ(image->config.working_dir, "/srv");
  EXPECT_EQ(image->config.exposed_ports, std::vector<std::string>{"80/tcp"});
  EXPECT_EQ(testkit::read_file(layout().layer_dir(built.diff_id) / "hello"), "hello v1");
  EXPECT_EQ(testkit::read_file(layout().image_manifest_file(built.manifest_digest)),
            built.manifest);
  EXPECT_EQ(testkit::read_file(layout().image_config_file(built.manifest_digest)),
            testkit::read_file(built.config.path));
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());  // no blob kept
  EXPECT_GT(recorded_layer_bytes(built.diff_id), 0u);

  // Pulled again: resolved at the registry, the layer is not unpacked a second time.
  struct stat before {};
  ASSERT_EQ(::stat(layout().layer_dir(built.diff_id).c_str(), &before), 0);
  auto again = defaults->ensure(ref("web:v1"));
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->manifest_digest, built.manifest_digest);
  struct stat after {};
  ASSERT_EQ(::stat(layout().layer_dir(built.diff_id).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);

  stop_registry();
  auto cached = defaults->ensure(ref("web:v1"));  // the pull fails: the cache serves
  ASSERT_TRUE(cached.has_value()) << cached.error().message;
  EXPECT_EQ(cached->manifest_digest, built.manifest_digest);
  auto unknown = defaults->ensure(ref("web:v2"));  // nothing cached to fall back to
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInternal);
  EXPECT_TRUE(unknown.error().message.starts_with("pulling image " + ref("web:v2") + ": "))
      << unknown.error().message;
  auto by_digest = defaults->ensure(ref("web@" + built.manifest_digest.str()));
  ASSERT_TRUE(by_digest.has_value()) << by_digest.error().message;

  // A restarted agent finds the image again; always insists on the registry.
  auto always = store(PullBehavior::kAlways);
  auto refused = always->ensure(ref("web:v1"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kInternal);
  EXPECT_NE(refused.error().message.find(ref("web:v1")), std::string::npos);
  for (PullBehavior behavior : {PullBehavior::kOnce, PullBehavior::kPreferCached}) {
    auto restarted = store(behavior);
    auto reused = restarted->ensure(ref("web:v1"));
    ASSERT_TRUE(reused.has_value()) << to_string(behavior) << ": " << reused.error().message;
    EXPECT_EQ(reused->manifest_digest, built.manifest_digest);
    EXPECT_EQ(reused->config.env, std::vector<std::string>{"GREETING=hello v1"});
    EXPECT_FALSE(restarted->ensure(ref("web:v2")).has_value());
  }
}

TEST_F(ImageStoreTest, OncePullsOnlyWhatIsNotCached) {
  oci::BuiltImage first = push("web:v1", "first");
  auto once = store(PullBehavior::kOnce);
  auto image = once->ensure(ref("web:v1"));
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->manifest_digest, first.manifest_digest);
  // The tag moves on; once keeps what it pulled, default follows the tag.
  oci::BuiltImage second = push("web:v1", "second");
  auto kept = once->ensure(ref("web:v1"));
  ASSERT_TRUE(kept.has_value()) << kept.error().message;
  EXPECT_EQ(kept->manifest_digest, first.manifest_digest);
  auto followed = store(PullBehavior::kDefault)->ensure(ref("web:v1"));
  ASSERT_TRUE(followed.has_value()) << followed.error().message;
  EXPECT_EQ(followed->manifest_digest, second.manifest_digest);
}

// Pulls of one registry reuse one logged-in client, and so one connection: a launch does not
// pay for a TCP handshake and a login each time. After kClientReuse a new one is made.
TEST_F(ImageStoreTest, RepeatedPullsReuseTheRegistryConnection) {
  push("web:v1", "reused");
  auto always = store(PullBehavior::kAlways);
  auto remote_ports = [&] {
    std::set<std::string> ports;
    std::string log = testkit::read_file(root_ / "registry/log");
    for (std::size_t at = log.find("http.request.remoteaddr"); at != std::string::npos;
         at = log.find("http.request.remoteaddr", at + 1)) {
      std::size_t colon = log.find("127.0.0.1:", at);
      if (colon != std::string::npos && colon - at < 40) {
        ports.insert(log.substr(colon, log.find_first_not_of("0123456789.:", colon) - colon));
      }
    }
    return ports;
  };
  std::size_t before = remote_ports().size();
  for (int pull = 0; pull < 3; ++pull) {
    auto image = always->ensure(ref("web:v1"));
    ASSERT_TRUE(image.has_value()) << image.error().message;
  }
  EXPECT_EQ(remote_ports().size(), before + 1) << testkit::read_file(root_ / "registry/log");
  clock_.advance(std::chrono::minutes(11));
  ASSERT_TRUE(always->ensure(ref("web:v1")).has_value());
  EXPECT_EQ(remote_ports().size(), before + 2);
}

TEST_F(ImageStoreTest, LayeredImagesShareCachedLayers) {
  oci::BuiltImage base = push("base:v1", "base");
  oci::BuiltImage middle = build("middle");
  oci::BuiltImage top = build("top");
  auto defaults = store(PullBehavior::kDefault);
  ASSERT_TRUE(defaults->ensure(ref("base:v1")).has_value());
  struct stat before {};
  ASSERT_EQ(::stat(layout().layer_dir(base.diff_id).c_str(), &before), 0);

  oci::Digest stacked = push_stacked("app:v1", {&base, &middle, &top});
  auto image = defaults->ensure(ref("app:v1"));
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->manifest_digest, stacked);
  EXPECT_EQ(image->diff_ids, (std::vector<oci::Digest>{base.diff_id, middle.diff_id, top.diff_id}));
  EXPECT_EQ(image->config.cmd, std::vector<std::string>{"/bin/stacked"});
  EXPECT_TRUE(image->config.env.empty());
  struct stat after {};
  ASSERT_EQ(::stat(layout().layer_dir(base.diff_id).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);  // already cached: not fetched again
  EXPECT_EQ(testkit::read_file(layout().layer_dir(middle.diff_id) / "hello"), "middle");
  EXPECT_EQ(testkit::read_file(layout().layer_dir(top.diff_id) / "hello"), "top");
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());

  // The base image goes; its layer stays for the stacked image.
  defaults->acquire(stacked);
  clock_.advance(4h);
  EXPECT_EQ(defaults->clean_up(), 1u);
  EXPECT_TRUE(layer_unpacked(layout(), base.diff_id));
}

TEST_F(ImageStoreTest, UnknownImagesKeepTheRegistryErrorCodes) {
  push("web:v1", "hello");
  auto defaults = store(PullBehavior::kDefault);
  auto tag = defaults->ensure(ref("web:nosuch"));
  ASSERT_FALSE(tag.has_value());
  EXPECT_EQ(tag.error().code, ErrorCode::kImageNotFound) << tag.error().message;
  EXPECT_TRUE(tag.error().message.starts_with("pulling image " + ref("web:nosuch") + ": "))
      << tag.error().message;
  auto repository = defaults->ensure(ref("nosuch:v1"));
  ASSERT_FALSE(repository.has_value());
  EXPECT_TRUE(repository.error().code == ErrorCode::kRepositoryNotFound ||
              repository.error().code == ErrorCode::kImageNotFound)
      << repository.error().message;
  auto malformed = defaults->ensure("Web::v1");
  ASSERT_FALSE(malformed.has_value());
  EXPECT_EQ(malformed.error().code, ErrorCode::kInvalidParameter);
  EXPECT_TRUE(store(PullBehavior::kDefault)->images().empty());
}

TEST_F(ImageStoreTest, ConcurrentEnsuresShareOnePull) {
  oci::BuiltImage built = push("web:v1", "shared");
  auto defaults = store(PullBehavior::kDefault);
  std::vector<Result<Image>> results(4, fail(ErrorCode::kInternal, "not run"));
  {
    std::vector<std::jthread> callers;
    for (auto& result : results) {
      callers.emplace_back([&] { result = defaults->ensure(ref("web:v1")); });
    }
  }
  for (const auto& result : results) {
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(result->manifest_digest, built.manifest_digest);
  }
  EXPECT_EQ(defaults->images().size(), 1u);
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
}

TEST_F(ImageStoreTest, CleanUpRemovesUnusedImagesButNotAcquiredOnes) {
  oci::BuiltImage old_image = push("web:old", "old");
  oci::BuiltImage busy_image = push("web:busy", "busy");
  auto images = store(PullBehavior::kDefault);
  ASSERT_TRUE(images->ensure(ref("web:old")).has_value());
  ASSERT_TRUE(images->ensure(ref("web:busy")).has_value());
  images->acquire(busy_image.manifest_digest);
  // Their init layers, as launches make them.
  std::vector<oci::Digest> old_layers{old_image.diff_id};
  std::vector<oci::Digest> busy_layers{busy_image.diff_id};
  ASSERT_TRUE(ensure_init_layer(layout(), old_layers).has_value());
  ASSERT_TRUE(ensure_init_layer(layout(), busy_layers).has_value());

  clock_.advance(2h);  // younger than max_unused_age
  EXPECT_EQ(images->clean_up(), 0u);
  clock_.advance(2h);
  EXPECT_EQ(images->clean_up(), 1u);
  EXPECT_FALSE(fs::exists(layout().image_dir(old_image.manifest_digest)));
  EXPECT_FALSE(layer_unpacked(layout(), old_image.diff_id));
  EXPECT_FALSE(fs::exists(init_layer_path(layout(), old_layers)));
  EXPECT_TRUE(fs::exists(layout().image_dir(busy_image.manifest_digest)));
  EXPECT_TRUE(layer_unpacked(layout(), busy_image.diff_id));
  EXPECT_TRUE(fs::exists(init_layer_path(layout(), busy_layers)));
  ASSERT_EQ(images->images().size(), 1u);

  images->release(busy_image.manifest_digest);  // used until now
  clock_.advance(2h);
  EXPECT_EQ(images->clean_up(), 0u);
  clock_.advance(2h);
  EXPECT_EQ(images->clean_up(), 1u);
  EXPECT_FALSE(layer_unpacked(layout(), busy_image.diff_id));
  EXPECT_TRUE(images->images().empty());

  // Once cleaned up, once pulls again.
  stop_registry();
  EXPECT_FALSE(store(PullBehavior::kOnce)->ensure(ref("web:old")).has_value());
}

TEST_F(ImageStoreTest, AcquireCachedGivesTheCachedImageWithoutTheRegistryAndHoldsIt) {
  oci::BuiltImage image = push("web:early", "early");
  auto images = store(PullBehavior::kDefault);
  EXPECT_FALSE(images->acquire_cached(ref("web:early")).has_value());  // not pulled yet
  ASSERT_TRUE(images->ensure(ref("web:early")).has_value());
  stop_registry();
  auto cached = images->acquire_cached(ref("web:early"));
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->manifest_digest, image.manifest_digest);
  EXPECT_EQ(cached->diff_ids, std::vector<oci::Digest>{image.diff_id});
  EXPECT_FALSE(images->acquire_cached(ref("web:other")).has_value());
  EXPECT_FALSE(images->acquire_cached("not a reference").has_value());

  clock_.advance(5h);  // older than max_unused_age, but held
  EXPECT_EQ(images->clean_up(), 0u);
  images->release(image.manifest_digest);
  clock_.advance(5h);
  EXPECT_EQ(images->clean_up(), 1u);
  EXPECT_FALSE(images->acquire_cached(ref("web:early")).has_value());
}

TEST_F(ImageStoreTest, UsesAreSavedAtMostOnceAMinute) {
  oci::BuiltImage built = push("web:1", "one");
  auto images = store(PullBehavior::kPreferCached);
  ASSERT_TRUE(images->ensure(ref("web:1")).has_value());  // pulled: saved
  auto saved_use = [&] {
    auto index = boost::json::parse(saved_index(layout()));
    return index.at("images").at(built.manifest_digest.str()).at("lastUsed").to_number<double>();
  };
  double pulled = saved_use();

  // A launch's use of the cached image does not rewrite the index within the minute...
  clock_.advance(30s);
  ASSERT_TRUE(images->ensure(ref("web:1")).has_value());
  images->release(built.manifest_digest);
  EXPECT_EQ(saved_use(), pulled);
  // ...the next one after it does, with the time of that use.
  clock_.advance(31s);
  ASSERT_TRUE(images->ensure(ref("web:1")).has_value());
  EXPECT_EQ(saved_use(), pulled + 61);
}

TEST_F(ImageStoreTest, CleanUpKeepsTheCacheUnderItsSizeCapOldestFirst) {
  oci::BuiltImage oldest = push("web:1", "one");
  oci::BuiltImage middle = push("web:2", "two");
  oci::BuiltImage newest = push("web:3", "three");
  auto first = store(PullBehavior::kDefault);
  for (const char* tag : {"web:1", "web:2", "web:3"}) {
    ASSERT_TRUE(first->ensure(ref(tag)).has_value()) << tag;
    clock_.advance(1min);
  }
  ImageStoreOptions capped;
  capped.max_cache_bytes =
      recorded_layer_bytes(newest.diff_id) + recorded_layer_bytes(middle.diff_id);
  auto images = store(PullBehavior::kDefault, capped);  // sizes and uses come from the index
  EXPECT_EQ(images->clean_up(), 0u);                    // all used within min_unused_age
  clock_.advance(1h);
  EXPECT_EQ(images->clean_up(), 1u);
  EXPECT_FALSE(layer_unpacked(layout(), oldest.diff_id));
  EXPECT_TRUE(layer_unpacked(layout(), middle.diff_id));
  EXPECT_TRUE(layer_unpacked(layout(), newest.diff_id));

  ImageStoreOptions tiny;
  tiny.max_cache_bytes = 1;
  EXPECT_EQ(store(PullBehavior::kPreferCached, tiny)->clean_up(), 0u);  // cleanup is off
  EXPECT_EQ(store(PullBehavior::kDefault, tiny)->clean_up(), 2u);
}

}  // namespace
}  // namespace wharf::agent
