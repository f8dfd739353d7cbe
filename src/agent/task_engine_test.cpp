// The agent's copy of its desired state (WharfPollTasks answers with stubs for unchanged tasks),
// and tasks run by the engine against a fake registry and a runtime that starts nothing: their
// secrets and registry credentials.
#include "agent/task_engine.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>

#include "agent/files.hpp"
#include "agent/test_layers.hpp"
#include "common/crypto.hpp"
#include "http/server.hpp"
#include "oci/fake_registry_testing.hpp"
#include "oci/image_builder.hpp"

namespace wharf::agent {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

bj::object entry(const std::string& arn, const std::string& desired = "RUNNING") {
  return bj::object{
      {"taskArn", arn},
      {"desiredStatus", desired},
      {"taskDefinition",
       bj::object{{"family", "web"},
                  {"containerDefinitions", bj::array{bj::object{{"name", "main"}}}}}},
      {"containers", bj::array{bj::object{{"name", "main"}, {"containerArn", arn + "/main"}}}}};
}

bj::object stub(const std::string& arn) {
  return bj::object{{"taskArn", arn}, {"unchanged", true}};
}

std::vector<std::string> arns(const std::vector<DesiredTask>& tasks) {
  std::vector<std::string> out;
  for (const DesiredTask& task : tasks) out.push_back(task.arn);
  return out;
}

TEST(DesiredStateTest, StubsStandForWhatTheAgentWasToldBefore) {
  DesiredState state;
  auto first = state.merge(
      bj::object{{"version", 5},
                 {"tasks", bj::array{entry("task/a"), entry("task/b")}},
                 {"groupMembers", bj::object{{"sg-1", bj::array{"172.31.0.4", "172.31.0.5"}}}}});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->listed, (std::set<std::string>{"task/a", "task/b"}));
  EXPECT_EQ(arns(first->changed), (std::vector<std::string>{"task/a", "task/b"}));
  ASSERT_TRUE(first->group_members.has_value());
  EXPECT_EQ(first->group_members->at("sg-1"),
            (std::vector<std::string>{"172.31.0.4", "172.31.0.5"}));

  // a unchanged, b told to stop, c new.
  auto second = state.merge(bj::object{
      {"version", 6},
      {"tasks", bj::array{stub("task/a"), entry("task/b", "STOPPED"), entry("task/c")}}});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->listed, (std::set<std::string>{"task/a", "task/b", "task/c"}));
  EXPECT_EQ(arns(second->changed), (std::vector<std::string>{"task/b", "task/c"}));
  EXPECT_EQ(second->changed[0].desired_status, "STOPPED");
  EXPECT_EQ(second->changed[1].container_arns.at("main"), "task/c/main");
  EXPECT_FALSE(second->group_members.has_value());  // not in the answer: sets left alone

  // b is no longer listed: forgotten, so a stub for it is an error (poll again from 0).
  auto third = state.merge(bj::object{{"tasks", bj::array{stub("task/a"), stub("task/c")}}});
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_TRUE(third->changed.empty());
  EXPECT_EQ(third->listed, (std::set<std::string>{"task/a", "task/c"}));
  auto confused = state.merge(bj::object{{"tasks", bj::array{stub("task/b")}}});
  ASSERT_FALSE(confused);
  EXPECT_EQ(confused.error().code, ErrorCode::kNotFound);

  state.clear();
  EXPECT_FALSE(state.merge(bj::object{{"tasks", bj::array{stub("task/a")}}}));
  auto whole = state.merge(bj::object{{"tasks", bj::array{entry("task/a")}}});
  ASSERT_TRUE(whole);
  EXPECT_EQ(arns(whole->changed), (std::vector<std::string>{"task/a"}));
}

std::string read_file(const fs::path& path) {
  return read_text_file(path).value_or("");
}

// A runtime that starts nothing: it keeps the config.json of every bundle it is asked to run,
// then refuses, so a task stops right after its first container's bundle is written.
class BundleKeepingRuntime final : public Runtime {
 public:
  std::string_view name() const override { return "test"; }
  Result<pid_t> create(std::string_view id, const fs::path& bundle, const ContainerIo&) override {
    return keep(id, bundle);
  }
  Status start(std::string_view) override { return fail(ErrorCode::kNotFound, "no container"); }
  Result<pid_t> run(std::string_view id, const fs::path& bundle, const ContainerIo&) override {
    return keep(id, bundle);
  }
  Result<ContainerState> state(std::string_view) override {
    return fail(ErrorCode::kNotFound, "no container");
  }
  Status kill(std::string_view, int) override { return fail(ErrorCode::kNotFound, "no container"); }
  Result<ExitStatus> exec(std::string_view, const std::vector<std::string>&,
                          std::chrono::milliseconds) override {
    return fail(ErrorCode::kNotFound, "no container");
  }
  Status remove(std::string_view, bool) override { return {}; }
  Result<std::vector<ContainerState>> list() override { return std::vector<ContainerState>{}; }
  Result<std::optional<ExitStatus>> wait(std::string_view,
                                         std::optional<std::chrono::milliseconds>) override {
    return std::optional<ExitStatus>{};
  }

  // The spec of the container `id` was to run from; nullopt when none was asked for.
  std::optional<bj::object> spec(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto found = specs_.find(id);
    if (found == specs_.end()) return std::nullopt;
    return found->second;
  }

 private:
  Result<pid_t> keep(std::string_view id, const fs::path& bundle) {
    bj::value spec = bj::parse(read_file(bundle / "config.json"));
    std::lock_guard lock(mutex_);
    specs_[std::string(id)] = spec.as_object();
    return fail(ErrorCode::kInternal, "the test runtime starts no container");
  }

  std::mutex mutex_;
  std::map<std::string, bj::object> specs_;
};

// A SecretFetcher over a map, remembering what it was asked for.
class FakeSecrets {
 public:
  void put(const std::string& secret_id, std::string value,
           SecretSource source = SecretSource::kSecretsManager) {
    SecretRef secret;
    secret.source = source;
    secret.secret_id = secret_id;
    values_[secret] = std::move(value);
  }

  SecretFetcher fetcher() {
    return [this](const SecretRef& secret) -> Result<std::string> {
      std::unique_lock lock(mutex_);
      asked_.push_back(secret.secret_id);
      changed_.notify_all();
      changed_.wait(lock, [this] { return !held_; });
      auto found = values_.find(secret);
      if (found != values_.end()) return found->second;
      return fail(ErrorCode::kNotFound,
                  "GetSecretValue: HTTP 400 ResourceNotFoundException: Secrets Manager can't "
                  "find the specified secret.");
    };
  }

  std::vector<std::string> asked() {
    std::lock_guard lock(mutex_);
    return asked_;
  }

  // Fetches wait from hold() until release().
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  // Waits until some fetch has begun; false after 60 s.
  bool wait_for_a_fetch() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(60), [this] { return !asked_.empty(); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  std::map<SecretRef, std::string> values_;
  std::vector<std::string> asked_;
};

constexpr std::string_view kTaskArn = "arn:aws:ecs:us-east-1:123456789012:task/default/0a1b2c3d";
constexpr std::string_view kTaskId = "0a1b2c3d";
constexpr std::string_view kSecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";
// The secret values of these tests: none may reach a saved state, a report or a log line.
constexpr std::string_view kPassword = "s3cr3t-value";

class TaskEngineSecretsTest : public testkit::DataDirTest {
 protected:
  void SetUp() override {
    DataDirTest::SetUp();
    if (HasFatalFailure()) return;
    // A cgroup v1 "hierarchy" of plain directories: tasks without limits only make and remove
    // directories in it.
    fs::create_directories(root_ / "cgroup");
    cgroups_.emplace(CgroupMounts{CgroupVersion::kV1, {{"memory", root_ / "cgroup"}}, {}});
    images_ = std::make_unique<ImageStore>(layout(), ImageStoreOptions{}, clock_);
    auto loaded = images_->load();
    ASSERT_TRUE(loaded) << loaded.error().message;
  }

  void TearDown() override {
    secrets_.release();  // a test that failed while fetches were held must not hang here
    engine_.reset();
    if (registry_server_) registry_server_->stop();
    DataDirTest::TearDown();
  }

  // Serves a one-layer image as <host>/web:latest; with a `password`, only to alice with it.
  void start_registry(std::string password = "") {
    fs::path tree = root_ / "tree";
    fs::create_directories(tree / "bin");
    std::ofstream(tree / "bin/app") << "#!/bin/sh\n";
    oci::ImageBuildOptions options;
    options.mtime = TimePoint{};
    options.config.cmd = {"/bin/app"};
    options.temp_parent = root_;
    auto built = oci::build_image(tree, options);
    ASSERT_TRUE(built) << built.error().message;
    if (!password.empty()) {
      registry_.auth = oci::testing::FakeRegistry::Auth::kBasic;
      registry_.user = "alice";
      registry_.password = std::move(password);
    }
    registry_.put_blob("web", read_file(built->config.path));
    registry_.put_blob("web", read_file(built->layer.path));
    registry_.put_manifest("web", built->manifest_media_type, built->manifest, "latest");
    auto server = http::Server::start(http::ServerOptions{}, registry_);
    ASSERT_TRUE(server) << server.error().message;
    registry_server_ = std::move(*server);
    image_reference_ = "127.0.0.1:" + std::to_string(registry_server_->port()) + "/web:latest";
  }

  // A task definition of one container `definition`, named "web", with the registry's image.
  bj::object task_definition(bj::object definition) const {
    definition["name"] = "web";
    definition["image"] = image_reference_;
    return bj::object{{"family", "web"},
                      {"networkMode", "host"},
                      {"containerDefinitions", bj::array{std::move(definition)}}};
  }

  // Starts the engine, which resumes the tasks saved in the data directory.
  void start_engine() {
    TaskEngineOptions options;
    options.cluster = "default";
    options.fetch_secret = secrets_.fetcher();
    options.fetch_s3_object = [this](const S3Object& object) -> Result<std::string> {
      std::lock_guard lock(mutex_);
      objects_asked_.push_back(object);
      auto found = objects_.find(object);
      if (found != objects_.end()) return found->second;
      return fail(ErrorCode::kNotFound, "GetObject s3://" + object.bucket + "/" + object.key +
                                            ": HTTP 404 NoSuchKey: The specified key does not "
                                            "exist.");
    };
    engine_ = std::make_unique<TaskEngine>(layout(), runtime_, *cgroups_, *images_, nullptr,
                                           nullptr, clock_, std::move(options), [this] {
                                             std::lock_guard lock(mutex_);
                                             changes_.notify_all();
                                           });
    auto recovered = engine_->recover();
    EXPECT_TRUE(recovered) << recovered.error().message;
  }

  // Runs a task of one container `definition` (see task_definition) until it is STOPPED, and
  // returns its last report.
  bj::object run_until_stopped(bj::object definition) {
    start_engine();
    start_task(std::move(definition));
    return wait_until_stopped();
  }

  // Gives the engine a task of one container `definition` (see task_definition) to run.
  void start_task(bj::object definition) {
    DesiredTask task;
    task.arn = kTaskArn;
    task.task_definition = task_definition(std::move(definition));
    DesiredUpdate update;
    update.listed = {task.arn};
    update.changed = {task};
    EXPECT_TRUE(engine_->apply(update));
  }

  bj::object wait_until_stopped() {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::unique_lock lock(mutex_);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& report : engine_->pending_reports().due) {
        if (report.change.at("status") == "STOPPED") return report.change;
      }
      changes_.wait_for(lock, 100ms);
    }
    ADD_FAILURE() << "the task did not stop";
    return {};
  }

  // A container definition whose one secret's fetch waits until secrets_.release(): its task
  // stays PENDING meanwhile.
  bj::object container_held_in_its_fetch() {
    std::string db = std::string(kSecretArn) + "db";
    secrets_.put(db, std::string(kPassword));
    secrets_.hold();
    return bj::object{{"secrets", bj::array{bj::object{{"name", "DB"}, {"valueFrom", db}}}}};
  }

  // Saves task kTaskArn of `definition` (one container) as an agent that stopped while it was
  // PENDING left it, with `extra` fields; true once written.
  bool save_pending_task(const bj::object& definition, const bj::object& extra = {}) {
    bj::object container = definition.at("containerDefinitions").at(0).as_object();
    bj::object saved{
        {"taskArn", kTaskArn},
        {"taskDefinition", definition},
        {"desiredStatus", "RUNNING"},
        {"status", "PENDING"},
        {"containers", bj::array{bj::object{{"definition", container}, {"status", "PENDING"}}}}};
    for (const auto& [key, value] : extra) saved[key] = value;
    fs::create_directories(layout().task_dir(kTaskId));
    return StateFile(layout().task_state_file(kTaskId)).write(bj::serialize(saved)).has_value();
  }

  std::string saved_task() const {
    auto text = StateFile(layout().task_state_file(kTaskId)).read();
    return text && *text ? **text : "";
  }

  static std::string reason(const bj::object& report) {
    return std::string(report.at("reason").as_string());
  }
  static std::string container_reason(const bj::object& report) {
    return std::string(report.at("containers").at(0).at("reason").as_string());
  }

  // The environment the runtime was to start the container with, by name.
  std::map<std::string, std::string> environment() {
    std::map<std::string, std::string> variables;
    auto spec = runtime_.spec(std::string(kTaskId) + "-web");
    if (!spec) return variables;
    for (const auto& entry : spec->at("process").at("env").as_array()) {
      std::string text(entry.as_string());
      variables[text.substr(0, text.find('='))] = text.substr(text.find('=') + 1);
    }
    return variables;
  }

  ManualClock clock_{TimePoint{} + 1000h};
  std::optional<Cgroups> cgroups_;
  std::unique_ptr<ImageStore> images_;
  BundleKeepingRuntime runtime_;
  FakeSecrets secrets_;
  std::map<S3Object, std::string> objects_;  // environmentFiles' objects
  std::vector<S3Object> objects_asked_;
  oci::testing::FakeRegistry registry_;
  std::unique_ptr<http::Server> registry_server_;
  std::string image_reference_ = "127.0.0.1:1/web:latest";  // nothing listens there
  std::unique_ptr<TaskEngine> engine_;
  std::mutex mutex_;
  std::condition_variable changes_;
};

TEST_F(TaskEngineSecretsTest, RepositoryCredentialsLogInToTheRegistry) {
  if (::geteuid() != 0) GTEST_SKIP() << "unpacking layers and mounting a rootfs need root";
  start_registry(std::string(kPassword));
  std::string parameter = std::string(kSecretArn) + "registry-AbCdEf";
  secrets_.put(parameter,
               R"({"username": "alice", "password": ")" + std::string(kPassword) + R"("})");
  auto report = run_until_stopped(
      bj::object{{"repositoryCredentials", bj::object{{"credentialsParameter", parameter}}}});
  EXPECT_EQ(secrets_.asked(), std::vector<std::string>{parameter});
  // The pull succeeded (with the login), so the container got as far as the runtime.
  EXPECT_TRUE(runtime_.spec(std::string(kTaskId) + "-web").has_value()) << reason(report);
  auto logins = registry_.authorizations();
  EXPECT_NE(std::ranges::find(logins, "Basic " + base64_encode("alice:" + std::string(kPassword))),
            logins.end());
  EXPECT_EQ(saved_task().find(kPassword), std::string::npos);
  EXPECT_EQ(bj::serialize(report).find(kPassword), std::string::npos);
}

TEST_F(TaskEngineSecretsTest, SecretsBecomeEnvironmentVariablesThatWinOverEnvironment) {
  if (::geteuid() != 0) GTEST_SKIP() << "unpacking layers and mounting a rootfs need root";
  start_registry();
  std::string db = std::string(kSecretArn) + "db-AbCdEf";
  std::string app = std::string(kSecretArn) + "app";
  secrets_.put(db, std::string(kPassword));
  secrets_.put(app, R"({"user": "app-user", "port": 5432})");
  auto report = run_until_stopped(bj::object{
      {"environment", bj::array{bj::object{{"name", "DB_PASSWORD"}, {"value", "from-environment"}},
                                bj::object{{"name", "OTHER"}, {"value", "kept"}}}},
      {"secrets", bj::array{bj::object{{"name", "DB_PASSWORD"}, {"valueFrom", db}},
                            bj::object{{"name", "DB_USER"}, {"valueFrom", app + ":user::"}},
                            bj::object{{"name", "DB_PORT"}, {"valueFrom", app + ":port::"}}}}});
  auto variables = environment();
  EXPECT_EQ(variables["DB_PASSWORD"], kPassword) << reason(report);
  EXPECT_EQ(variables["DB_USER"], "app-user");
  EXPECT_EQ(variables["DB_PORT"], "5432");
  EXPECT_EQ(variables["OTHER"], "kept");
  EXPECT_EQ(secrets_.asked(), (std::vector<std::string>{db, app}));  // each secret once
  EXPECT_FALSE(saved_task().empty());
  EXPECT_EQ(saved_task().find(kPassword), std::string::npos);
  EXPECT_EQ(bj::serialize(report).find(kPassword), std::string::npos);
}

// An agent that restarts after the pulls, before the containers were created, has no secrets
// (they are never saved): it fetches them again before it starts the containers.
TEST_F(TaskEngineSecretsTest, SecretsAreFetchedAgainAfterAnAgentRestart) {
  if (::geteuid() != 0) GTEST_SKIP() << "unpacking layers and mounting a rootfs need root";
  start_registry(std::string(kPassword));
  std::string parameter = std::string(kSecretArn) + "registry";
  std::string db = std::string(kSecretArn) + "db";
  secrets_.put(parameter,
               R"({"username": "alice", "password": ")" + std::string(kPassword) + R"("})");
  secrets_.put(db, std::string(kPassword));
  bj::object definition = task_definition(
      bj::object{{"repositoryCredentials", bj::object{{"credentialsParameter", parameter}}},
                 {"secrets", bj::array{bj::object{{"name", "DB_PASSWORD"}, {"valueFrom", db}}}}});
  ASSERT_TRUE(save_pending_task(definition, {{"pullStartedAt", 1.0}, {"pullStoppedAt", 2.0}}));
  start_engine();
  auto report = wait_until_stopped();
  EXPECT_EQ(secrets_.asked(), (std::vector<std::string>{parameter, db}));
  EXPECT_EQ(environment()["DB_PASSWORD"], kPassword) << reason(report);
  EXPECT_EQ(saved_task().find(kPassword), std::string::npos);
}

TEST_F(TaskEngineSecretsTest, ASecretThatCannotBeFetchedFailsTheTaskBeforeItsPull) {
  std::string db = std::string(kSecretArn) + "db";
  std::string gone = std::string(kSecretArn) + "gone";
  secrets_.put(db, std::string(kPassword));
  auto report = run_until_stopped(
      bj::object{{"secrets", bj::array{bj::object{{"name", "DB_PASSWORD"}, {"valueFrom", db}},
                                       bj::object{{"name", "API_KEY"}, {"valueFrom", gone}}}}});
  EXPECT_EQ(report.at("stopCode"), "TaskFailedToStart");
  std::string expected =
      "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
      "retrieval failed: unable to retrieve secret from asm: failed to fetch secret " +
      gone +
      " from secrets manager: GetSecretValue: HTTP 400 ResourceNotFoundException: Secrets "
      "Manager can't find the specified secret.";
  EXPECT_EQ(reason(report), expected);
  EXPECT_EQ(container_reason(report), expected);
  EXPECT_EQ(report.at("containers").at(0).at("status"), "STOPPED");
  EXPECT_FALSE(runtime_.spec(std::string(kTaskId) + "-web").has_value());
  EXPECT_EQ(saved_task().find(kPassword), std::string::npos);
}

using TaskEngineReportTest = TaskEngineSecretsTest;

// A new task is not reported while it starts, for up to two seconds: a quick launch is reported
// once, as RUNNING. A slower one is reported as PENDING after two seconds; an end, at once.
TEST_F(TaskEngineReportTest, AStartingTaskIsReportedOnceItHasBeenStartingForTwoSeconds) {
  bj::object container = container_held_in_its_fetch();
  start_engine();
  TimePoint given = clock_.now();
  start_task(container);
  ASSERT_TRUE(secrets_.wait_for_a_fetch());  // PENDING now, fetching before its pull

  auto held = engine_->pending_reports();
  EXPECT_TRUE(held.due.empty());
  EXPECT_EQ(held.next_due, given + 2s);
  clock_.advance(1999ms);
  EXPECT_TRUE(engine_->pending_reports().due.empty());

  clock_.advance(1ms);
  auto due = engine_->pending_reports();
  ASSERT_EQ(due.due.size(), 1u);
  EXPECT_EQ(due.due[0].change.at("status"), "PENDING");
  EXPECT_TRUE(due.due[0].change.contains("pullStartedAt"));
  EXPECT_FALSE(due.next_due.has_value());
  secrets_.release();
  auto report = wait_until_stopped();  // no container starts here (BundleKeepingRuntime)
  EXPECT_EQ(report.at("stopCode"), "TaskFailedToStart");
}

// The directory tasks are made in is marked on ext4, so that a launch that finds no spare makes
// its task's tree in a block group of ext4's choosing (see mark_top_directory).
TEST_F(TaskEngineSecretsTest, TheContainersDirectoryIsATopDirectoryOnExt4) {
  if (!testkit::on_ext4(root_)) GTEST_SKIP() << "the test's directory is not on ext4";
  start_engine();
  EXPECT_TRUE(testkit::is_top_directory(layout().containers_dir()));
}

// A task an agent restored from its saved state is reported at once: the server may have missed
// its last change.
TEST_F(TaskEngineReportTest, ARestoredTaskIsReportedAtOnce) {
  ASSERT_TRUE(save_pending_task(task_definition(container_held_in_its_fetch())));
  start_engine();
  ASSERT_TRUE(secrets_.wait_for_a_fetch());
  auto restored = engine_->pending_reports();
  ASSERT_EQ(restored.due.size(), 1u);
  EXPECT_EQ(restored.due[0].change.at("status"), "PENDING");
  secrets_.release();
  wait_until_stopped();
}

// A wall clock set back does not stretch a hold.
TEST_F(TaskEngineReportTest, AHoldEndsWhenTheClockIsSetBack) {
  bj::object container = container_held_in_its_fetch();
  start_engine();
  start_task(container);
  ASSERT_TRUE(secrets_.wait_for_a_fetch());
  EXPECT_TRUE(engine_->pending_reports().due.empty());
  clock_.advance(-1h);
  EXPECT_EQ(engine_->pending_reports().due.size(), 1u);
  secrets_.release();
  wait_until_stopped();
}

// The same task ending within the two seconds is reported at once.
TEST_F(TaskEngineReportTest, ATaskThatStopsWhileStartingIsReportedAtOnce) {
  start_engine();
  TimePoint given = clock_.now();
  start_task(bj::object{});  // nothing listens at its image's registry: it stops
  auto report = wait_until_stopped();
  EXPECT_EQ(report.at("stopCode"), "TaskFailedToStart");
  EXPECT_EQ(clock_.now(), given);
}

TEST_F(TaskEngineSecretsTest, RegistryCredentialsThatAreNotAUsernameAndPasswordAreExplained) {
  std::string parameter = std::string(kSecretArn) + "registry";
  secrets_.put(parameter, std::string(kPassword));
  auto report = run_until_stopped(
      bj::object{{"repositoryCredentials", bj::object{{"credentialsParameter", parameter}}}});
  EXPECT_EQ(report.at("stopCode"), "TaskFailedToStart");
  EXPECT_EQ(reason(report),
            "ResourceInitializationError: unable to pull secrets or registry auth: execution "
            "resource retrieval failed: the repositoryCredentials secret " +
                parameter +
                ": its SecretString is not JSON with string \"username\" and \"password\" "
                "members; store the registry login as {\"username\": \"...\", \"password\": "
                "\"...\"}");
  EXPECT_EQ(bj::serialize(report).find(kPassword), std::string::npos);
}

// The order ECS gives them: image < environmentFiles (the first file wins) < environment <
// secrets, from Secrets Manager or SSM parameters.
TEST_F(TaskEngineSecretsTest, EnvironmentFilesAndSsmParametersJoinTheEnvironment) {
  if (::geteuid() != 0) GTEST_SKIP() << "unpacking layers and mounting a rootfs need root";
  start_registry();
  std::string parameter = "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db";
  secrets_.put(parameter, std::string(kPassword), SecretSource::kParameterStore);
  objects_[{"config", "base.env"}] = "FROM_FILE=base\nSHADOWED=file\nDB_PASSWORD=file\n";
  objects_[{"config", "prod.env"}] = "FROM_FILE=prod\nSECOND=prod\n";
  auto report = run_until_stopped(bj::object{
      {"environmentFiles",
       bj::array{bj::object{{"type", "s3"}, {"value", "arn:aws:s3:::config/base.env"}},
                 bj::object{{"type", "s3"}, {"value", "arn:aws:s3:::config/prod.env"}}}},
      {"environment", bj::array{bj::object{{"name", "SHADOWED"}, {"value", "environment"}}}},
      {"secrets", bj::array{bj::object{{"name", "DB_PASSWORD"}, {"valueFrom", parameter}}}}});
  auto variables = environment();
  EXPECT_EQ(variables["FROM_FILE"], "base") << reason(report);
  EXPECT_EQ(variables["SECOND"], "prod");
  EXPECT_EQ(variables["SHADOWED"], "environment");
  EXPECT_EQ(variables["DB_PASSWORD"], kPassword);
  EXPECT_EQ(secrets_.asked(), std::vector<std::string>{parameter});
  EXPECT_EQ(saved_task().find(kPassword), std::string::npos);
  EXPECT_EQ(saved_task().find("FROM_FILE=base"), std::string::npos);
}

TEST_F(TaskEngineSecretsTest, AnEnvironmentFileThatCannotBeReadFailsTheTaskBeforeItsPull) {
  auto report = run_until_stopped(bj::object{
      {"environmentFiles",
       bj::array{bj::object{{"type", "s3"}, {"value", "arn:aws:s3:::config/gone.env"}}}}});
  EXPECT_EQ(report.at("stopCode"), "TaskFailedToStart");
  EXPECT_EQ(reason(report),
            "ResourceInitializationError: failed to download env files: s3://config/gone.env: "
            "GetObject s3://config/gone.env: HTTP 404 NoSuchKey: The specified key does not "
            "exist.");
  EXPECT_EQ(objects_asked_, (std::vector<S3Object>{{"config", "gone.env"}}));
  EXPECT_FALSE(runtime_.spec(std::string(kTaskId) + "-web").has_value());
}

}  // namespace
}  // namespace wharf::agent
