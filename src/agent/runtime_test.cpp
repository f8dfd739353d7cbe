// Real containers under runc and crun: a busybox layer unpacked and mounted as the rootfs, a bundle
// from a container definition, a task cgroup with limits; exit codes, logs, OOM kills and signals.
// Runs as root only; skipped where the runtime, overlayfs or cgroups are missing.
#include "agent/runtime.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "agent/bundle.hpp"
#include "agent/cgroup.hpp"
#include "agent/rootfs.hpp"
#include "agent/test_layers.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;
using namespace std::chrono_literals;
using testkit::DataDirTest;
using testkit::TarEntry;

constexpr std::int64_t kMib = 1024 * 1024;

bool on_path(const char* program) {
  std::string path = getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    if (access((fs::path(path.substr(start, end - start)) / program).c_str(), X_OK) == 0) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Every test runs under each runtime (the parameter).
class RuntimeTest : public DataDirTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!on_path(GetParam())) {
      GTEST_SKIP() << GetParam() << " is not installed (apt-get install " << GetParam() << ")";
    }
    if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "busybox-static is not installed";
    DataDirTest::SetUp();
    auto cgroups = Cgroups::detect();
    if (!cgroups) GTEST_SKIP() << cgroups.error().message;
    cgroups_.emplace(std::move(*cgroups));
    runtime_ = make_driver(false);
    ASSERT_NE(runtime_, nullptr);

    static int test_count = 0;
    task_id_ = "task-" + std::to_string(getpid()) + "-" + std::to_string(test_count++);
    test_cgroup_ = "/wharf-test-" + std::to_string(getpid());
    task_cgroup_ = test_cgroup_ + "/" + task_id_;
    auto created = cgroups_->create(task_cgroup_, {512, 128});
    ASSERT_TRUE(created.has_value()) << created.error().message;

    std::string busybox = testkit::read_file("/bin/busybox");
    std::vector<TarEntry> entries = {{.path = "bin", .type = AE_IFDIR, .perm = 0755},
                                     {.path = "bin/busybox", .perm = 0755, .content = busybox}};
    for (const char* applet : {"sh", "echo", "sleep", "cat"}) {
      entries.push_back({.path = std::string("bin/") + applet,
                         .type = AE_IFLNK,
                         .perm = 0777,
                         .symlink = "busybox"});
    }
    busybox_layer_ = unpack("busybox.tar", entries);
  }

  // Removes every container, rootfs and cgroup the test made, whatever state it failed in.
  void TearDown() override {
    for (const std::string& id : containers_) {
      auto removed = runtime_->remove(id, true);
      EXPECT_TRUE(removed.has_value()) << removed.error().message;
    }
    for (const ContainerRef& ref : rootfs_) {
      auto removed = remove_rootfs(layout(), ref);
      EXPECT_TRUE(removed.has_value()) << removed.error().message;
    }
    if (cgroups_) {
      auto removed = cgroups_->remove(test_cgroup_);
      EXPECT_TRUE(removed.has_value()) << removed.error().message;
    }
    DataDirTest::TearDown();
  }

  // A driver of the test's runtime on the test's state root; with `shim`, through the
  // wharf-shim built beside the tests. crun always gets the shim: on a hybrid cgroup host it
  // runs only through it.
  std::unique_ptr<Runtime> make_driver(bool shim) {
    RuntimeOptions options;
    options.name = GetParam();
    options.state_root = root_ / "runtime-state";
    if (shim || options.name == "crun") options.shim = WHARF_SHIM_PATH;
    auto runtime = make_named_runtime(options, ProcessReaper::instance());
    EXPECT_TRUE(runtime.has_value()) << runtime.error().message;
    return runtime ? std::move(*runtime) : nullptr;
  }

  struct Container {
    std::string id;
    ContainerRef ref;
    ContainerIo io;
    std::string cgroup;
  };

  // Mounts a rootfs, writes the bundle for `definition` and creates the container.
  Container create(const std::string& definition, bool run_now = false) {
    bj::object container = bj::parse(definition).as_object();
    ContainerRef ref{task_id_, std::string(container.at("name").as_string())};
    Container made{
        task_id_ + "-" + ref.container_name,
        ref,
        {layout().container_logs_dir(ref) / "stdout", layout().container_logs_dir(ref) / "stderr"},
        container_cgroup_path(task_cgroup_, ref.container_name)};
    rootfs_.push_back(ref);
    std::vector<oci::Digest> layers{busybox_layer_};
    auto merged = mount_rootfs(layout(), ref, layers);
    EXPECT_TRUE(merged.has_value()) << merged.error().message;
    if (!merged) return made;

    BundleInput input;
    input.container = container;
    input.task_cpu = 512;
    input.task_memory_mib = 128;
    input.rootfs = *merged;
    input.bundle_dir = layout().container_bundle_dir(ref);
    input.hostname = ref.container_name;
    input.cgroup_parent = task_cgroup_;
    input.rlimit_ceilings = current_rlimit_ceilings();
    input.host_capabilities = current_capability_bounding_set();
    auto user = resolve_user_in_rootfs(*merged, effective_user(container, input.image));
    EXPECT_TRUE(user.has_value()) << user.error().message;
    if (user) input.user = *user;
    auto spec = make_runtime_spec(input);
    EXPECT_TRUE(spec.has_value()) << spec.error().message;
    if (!spec) return made;
    runtime_->tune_spec(made.id, *spec);
    auto written =
        write_bundle(input.bundle_dir, *spec, make_bundle_files(input, read_host_files()));
    EXPECT_TRUE(written.has_value()) << written.error().message;

    containers_.push_back(made.id);
    auto pid = run_now ? runtime_->run(made.id, input.bundle_dir, made.io)
                       : runtime_->create(made.id, input.bundle_dir, made.io);
    EXPECT_TRUE(pid.has_value()) << pid.error().message;
    return made;
  }

  ExitStatus start_and_wait(const Container& container) {
    auto started = runtime_->start(container.id);
    EXPECT_TRUE(started.has_value()) << started.error().message;
    return wait(container);
  }

  ExitStatus wait(const Container& container) {
    auto status = runtime_->wait(container.id, 15s);
    EXPECT_TRUE(status.has_value()) << status.error().message;
    EXPECT_TRUE(status && status->has_value()) << container.id << " did not exit";
    return status && *status ? **status : ExitStatus{-1, std::nullopt};
  }

  // The file of a controller's control file for a cgroup path, on either cgroup version.
  fs::path control_file(const std::string& path, const char* v1_controller,
                        const char* file) const {
    const CgroupMounts& mounts = cgroups_->mounts();
    fs::path mount =
        mounts.version == CgroupVersion::kV1 ? mounts.v1.at(v1_controller) : mounts.unified;
    return mount / fs::path(path).relative_path() / file;
  }

  std::optional<Cgroups> cgroups_;
  std::unique_ptr<Runtime> runtime_;
  std::string task_id_;
  std::string test_cgroup_;
  std::string task_cgroup_;
  oci::Digest busybox_layer_;
  std::vector<std::string> containers_;
  std::vector<ContainerRef> rootfs_;
};

TEST_P(RuntimeTest, RunsACommandWithLimitsAndReportsItsExitCode) {
  bool v1 = cgroups_->version() == CgroupVersion::kV1;
  EXPECT_EQ(trim(testkit::read_file(
                control_file(task_cgroup_, "cpu", v1 ? "cpu.cfs_quota_us" : "cpu.max"))),
            v1 ? "50000" : "50000 100000");
  EXPECT_EQ(trim(testkit::read_file(
                control_file(task_cgroup_, "memory", v1 ? "memory.limit_in_bytes" : "memory.max"))),
            std::to_string(128 * kMib));

  Container app = create(R"({"name":"app","cpu":256,"memory":64,"memoryReservation":32,
      "entryPoint":["sh","-c"],
      "command":["echo hello; echo oops >&2; cat /etc/hostname; )"
                         R"(while read key value rest; do case $key in )"
                         R"(Seccomp:|NoNewPrivs:|CapEff:) echo $key $value;; esac; )"
                         R"(done < /proc/self/status; exit 3"]})");
  auto state = runtime_->state(app.id);
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_EQ(state->status, ContainerStatus::kCreated);
  EXPECT_GT(state->pid, 0);
  EXPECT_EQ(trim(testkit::read_file(
                control_file(app.cgroup, "memory", v1 ? "memory.limit_in_bytes" : "memory.max"))),
            std::to_string(64 * kMib));

  EXPECT_EQ(start_and_wait(app), (ExitStatus{3, std::nullopt}));
  // Docker's default capabilities are 0xa80425fb; seccomp mode 2 is a filter.
  EXPECT_EQ(testkit::read_file(app.io.stdout_file),
            "hello\napp\nCapEff: 00000000a80425fb\nNoNewPrivs: 1\nSeccomp: 2\n");
  EXPECT_EQ(testkit::read_file(app.io.stderr_file), "oops\n");

  auto listed = runtime_->list();
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, app.id);
  EXPECT_EQ(listed->front().status, ContainerStatus::kStopped);
  auto kills = cgroups_->oom_kills(app.cgroup);
  ASSERT_TRUE(kills.has_value()) << kills.error().message;
  EXPECT_EQ(*kills, 0u);

  ASSERT_TRUE(runtime_->remove(app.id, false).has_value());
  EXPECT_EQ(runtime_->state(app.id).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(runtime_->remove(app.id, false).has_value());  // already gone: fine
  auto again = runtime_->create(app.id, layout().container_bundle_dir(app.ref), app.io);
  ASSERT_TRUE(again.has_value()) << again.error().message;  // the id is free again
  auto duplicate = runtime_->create(app.id, layout().container_bundle_dir(app.ref), app.io);
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kResourceInUse);
}

TEST_P(RuntimeTest, AMemoryHogIsKilledByTheOomKiller) {
  Container hog = create(R"({"name":"hog","memory":16,
      "entryPoint":["sh","-c"],"command":["x=aaaa; while true; do x=$x$x; done"]})");
  EXPECT_EQ(start_and_wait(hog), (ExitStatus{137, SIGKILL}));
  // Read before the runtime deletes the container's cgroup.
  auto kills = cgroups_->oom_kills(hog.cgroup);
  ASSERT_TRUE(kills.has_value()) << kills.error().message;
  EXPECT_GE(*kills, 1u);
  auto usage = cgroups_->memory_usage(task_cgroup_);
  ASSERT_TRUE(usage.has_value()) << usage.error().message;
  EXPECT_LT(*usage, 128u * kMib);
}

TEST_P(RuntimeTest, SigtermStopsASleepingContainer) {
  // PID 1 of a pid namespace ignores signals it has no handler for, so the shell traps TERM.
  Container sleeper = create(R"({"name":"sleeper","entryPoint":["sh","-c"],
      "command":["trap 'echo terminated; exit 143' TERM; echo ready; sleep 30 & wait"]})");
  ASSERT_TRUE(runtime_->start(sleeper.id).has_value());
  for (int poll_idx = 0; poll_idx < 500; ++poll_idx) {
    if (testkit::read_file(sleeper.io.stdout_file) == "ready\n") break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(testkit::read_file(sleeper.io.stdout_file), "ready\n");
  EXPECT_EQ(runtime_->state(sleeper.id)->status, ContainerStatus::kRunning);
  ASSERT_TRUE(runtime_->kill(sleeper.id, SIGTERM).has_value());
  EXPECT_EQ(wait(sleeper), (ExitStatus{143, std::nullopt}));
  EXPECT_EQ(testkit::read_file(sleeper.io.stdout_file), "ready\nterminated\n");
  auto late = runtime_->kill(sleeper.id, SIGTERM);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, ErrorCode::kNotFound);
}

TEST_P(RuntimeTest, SigkillStopsAContainerThatIgnoresSigterm) {
  Container sleeper = create(R"({"name":"plain","entryPoint":["sleep"],"command":["30"]})");
  ASSERT_TRUE(runtime_->start(sleeper.id).has_value());
  ASSERT_TRUE(runtime_->kill(sleeper.id, SIGKILL).has_value());
  EXPECT_EQ(wait(sleeper), (ExitStatus{137, SIGKILL}));
}

TEST_P(RuntimeTest, TheShimKeepsExitStatusesForTheNextAgent) {
  runtime_ = make_driver(true);
  Container quick = create(R"({"name":"quick","entryPoint":["sh","-c"],"command":["exit 7"]})");
  Container slow = create(R"({"name":"slow","entryPoint":["sh","-c"],"command":["sleep 0.3"]})");
  ASSERT_TRUE(runtime_->start(quick.id).has_value());
  ASSERT_TRUE(runtime_->start(slow.id).has_value());
  EXPECT_EQ(wait(quick), (ExitStatus{7, std::nullopt}));

  // A new driver (as after an agent restart) learns both exits, the one that already happened
  // and the one it waits for.
  runtime_ = make_driver(true);
  EXPECT_EQ(wait(quick), (ExitStatus{7, std::nullopt}));
  auto pending = runtime_->wait(slow.id, 0ms);
  ASSERT_TRUE(pending.has_value()) << pending.error().message;
  EXPECT_FALSE(pending->has_value());
  EXPECT_EQ(wait(slow), (ExitStatus{0, std::nullopt}));

  // run() creates and starts in one runtime call.
  Container killed =
      create(R"({"name":"killed","entryPoint":["sleep"],"command":["30"]})", /*run_now=*/true);
  EXPECT_EQ(runtime_->state(killed.id)->status, ContainerStatus::kRunning);
  ASSERT_TRUE(runtime_->kill(killed.id, SIGKILL).has_value());
  EXPECT_EQ(wait(killed), (ExitStatus{137, SIGKILL}));
}

TEST_P(RuntimeTest, EveryContainerRunsUnderItsSeccompFilterAlsoFromAKeptProgram) {
  // Docker's profile refuses unshare() without CAP_SYS_ADMIN, which the kernel alone would
  // allow (a user namespace needs no capability). crun compiles the profile for the first
  // container and is handed the program for the second.
  const char* definition = R"({"name":"%s","entryPoint":["sh","-c"],
      "command":["unshare -U true; echo $?; grep Seccomp: /proc/self/status"]})";
  std::vector<Container> made;
  for (const char* name : {"first", "second"}) {
    char text[512];
    std::snprintf(text, sizeof text, definition, name);
    made.push_back(create(text, /*run_now=*/true));
    EXPECT_EQ(wait(made.back()), (ExitStatus{0, std::nullopt}));
    EXPECT_EQ(testkit::read_file(made.back().io.stdout_file), "1\nSeccomp:\t2\n") << name;
  }
  auto annotated = [&](const Container& container) {
    std::string config =
        testkit::read_file(layout().container_bundle_dir(container.ref) / "config.json");
    return config.find("run.oci.seccomp_bpf_data") != std::string::npos;
  };
  EXPECT_FALSE(annotated(made[0]));
  EXPECT_EQ(annotated(made[1]), std::string_view(GetParam()) == "crun");
}

TEST_P(RuntimeTest, CrunRunsFromASealedCopyOfItself) {
  if (std::string_view(GetParam()) != "crun") GTEST_SKIP() << "crun only";
  // A sealed copy spares crun copying itself at every call; an unsealed one would not.
  Container sleeper =
      create(R"({"name":"sleeper","entryPoint":["sleep"],"command":["30"]})", /*run_now=*/true);
  auto state = runtime_->state(sleeper.id);
  ASSERT_TRUE(state.has_value()) << state.error().message;
  std::string exe;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    std::string target = fs::read_symlink(entry.path(), error).string();
    if (target.starts_with("/memfd:crun")) exe = entry.path().string();
  }
  ASSERT_FALSE(exe.empty()) << "no sealed copy of crun held";
  UniqueFd copy(open(exe.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(copy);
  EXPECT_EQ(fcntl(copy.get(), F_GET_SEALS),
            F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
  EXPECT_EQ(testkit::read_file(exe), testkit::read_file(find_program("crun")));
  ASSERT_TRUE(runtime_->kill(sleeper.id, SIGKILL).has_value());
  EXPECT_EQ(wait(sleeper), (ExitStatus{137, SIGKILL}));
}

// The parent of process `pid`, from /proc.
pid_t parent_of(pid_t pid) {
  std::string status = testkit::read_file("/proc/" + std::to_string(pid) + "/status");
  std::size_t at = status.find("\nPPid:");
  return at == std::string::npos ? 0 : std::atoi(status.c_str() + at + 6);
}

TEST_P(RuntimeTest, TheShimStaysInTheHostsMountNamespace) {
  // On a hybrid host crun runs in a mount namespace without the cgroup2 mount; the shim that
  // stays with the container must not, or it would keep copies of the host's mounts alive.
  runtime_ = make_driver(true);
  Container sleeper =
      create(R"({"name":"sleeper","entryPoint":["sleep"],"command":["30"]})", /*run_now=*/true);
  auto state = runtime_->state(sleeper.id);
  ASSERT_TRUE(state.has_value()) << state.error().message;
  pid_t shim = parent_of(state->pid);
  ASSERT_GT(shim, 1);
  EXPECT_EQ(testkit::read_file("/proc/" + std::to_string(shim) + "/comm"), "wharf-shim\n");
  EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(shim) + "/ns/mnt"),
            fs::read_symlink("/proc/self/ns/mnt"));
  // And the host keeps its cgroup2 mount.
  if (!cgroups_->mounts().unified.empty()) {
    EXPECT_TRUE(detect_cgroup_mounts().has_value() &&
                detect_cgroup_mounts()->unified == cgroups_->mounts().unified);
  }
  ASSERT_TRUE(runtime_->kill(sleeper.id, SIGKILL).has_value());
  EXPECT_EQ(wait(sleeper), (ExitStatus{137, SIGKILL}));
}

// The runtime probes' cgroups (wharf-probe-*) in every hierarchy.
std::set<fs::path> probe_cgroups() {
  std::set<fs::path> found;
  std::error_code error;
  std::vector<fs::path> hierarchies{"/sys/fs/cgroup"};
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup", error)) {
    if (entry.is_directory(error) && !entry.is_symlink(error)) hierarchies.push_back(entry.path());
  }
  for (const fs::path& hierarchy : hierarchies) {
    for (const auto& entry : fs::directory_iterator(hierarchy, error)) {
      if (entry.path().filename().string().starts_with("wharf-probe-")) found.insert(entry.path());
    }
  }
  return found;
}

TEST_P(RuntimeTest, TheFactoryPicksARuntimeThatWorksHere) {
  std::set<fs::path> probes_before = probe_cgroups();
  RuntimeOptions options;
  options.state_root = root_ / "factory-state";
  options.shim = WHARF_SHIM_PATH;
  auto runtime = make_runtime(options, ProcessReaper::instance());
  ASSERT_TRUE(runtime.has_value()) << runtime.error().message;
  // crun first, wherever it is installed: through the shim it works on hybrid hosts too.
  EXPECT_EQ((*runtime)->name(), std::string_view(on_path("crun") ? "crun" : "runc"));
  auto listed = (*runtime)->list();
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  EXPECT_TRUE(listed->empty());  // the probe container is gone

  options.name = GetParam();
  auto named = make_runtime(options, ProcessReaper::instance());
  ASSERT_TRUE(named.has_value()) << named.error().message;
  EXPECT_EQ((*named)->name(), std::string_view(GetParam()));

  // Without the shim, crun cannot be kept from seeing a hybrid host's cgroup2 mount, and it
  // refuses such a host when that mount has controllers; the probe must find out.
  const CgroupMounts& mounts = cgroups_->mounts();
  bool hybrid = mounts.version == CgroupVersion::kV1 && !mounts.unified.empty() &&
                !trim(testkit::read_file(mounts.unified / "cgroup.controllers")).empty();
  if (hybrid && options.name == "crun") {
    options.shim.clear();
    auto crun = make_runtime(options, ProcessReaper::instance());
    ASSERT_FALSE(crun.has_value());
    EXPECT_NE(crun.error().message.find("hybrid"), std::string::npos) << crun.error().message;
  }
  // The probes' cgroups are gone, in every hierarchy (a failed one's included).
  EXPECT_EQ(probe_cgroups(), probes_before);
  options.name = "youki";
  EXPECT_EQ(make_runtime(options, ProcessReaper::instance()).error().code,
            ErrorCode::kInvalidParameter);
}

INSTANTIATE_TEST_SUITE_P(Runtimes, RuntimeTest, ::testing::Values("runc", "crun"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace wharf::agent
