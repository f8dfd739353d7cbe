// OCI spec generation: tables of container definitions and the config.json parts they produce.
#include "agent/bundle.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <limits>

namespace wharf::agent {
namespace {

namespace bj = boost::json;

constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

bj::object object_from(std::string_view text) {
  return bj::parse(text).as_object();
}

BundleInput base_input(std::string_view container_json = R"({"name":"web"})") {
  BundleInput input;
  input.container = object_from(container_json);
  input.image.cmd = {"/bin/server"};
  input.rootfs = "/data/containers/t1/web/merged";
  input.bundle_dir = "/data/containers/t1/web/bundle";
  input.hostname = "web-host";
  input.cgroup_parent = "/wharf/t1";
  input.rlimit_ceilings = {{"nofile", 20000}, {"core", kUnlimited}};
  return input;
}

bj::object spec_of(const BundleInput& input) {
  auto spec = make_runtime_spec(input);
  EXPECT_TRUE(spec.has_value()) << spec.error().message;
  return spec ? *spec : bj::object{};
}

std::vector<std::string> strings(const bj::value& list) {
  std::vector<std::string> out;
  for (const bj::value& item : list.as_array()) out.emplace_back(item.as_string());
  return out;
}

const bj::value& at(const bj::object& spec, std::initializer_list<std::string_view> path) {
  const bj::value* value = nullptr;
  const bj::object* object = &spec;
  for (std::string_view key : path) {
    value = &object->at(key);
    if (value->is_object()) object = &value->as_object();
  }
  return *value;
}

const bj::object* find_mount(const bj::object& spec, std::string_view destination) {
  for (const bj::value& mount : spec.at("mounts").as_array()) {
    if (mount.at("destination").as_string() == destination) return &mount.as_object();
  }
  return nullptr;
}

struct ArgsCase {
  const char* name;
  const char* container;  // JSON
  const char* overrides;  // JSON
  std::vector<std::string> image_entrypoint;
  std::vector<std::string> image_cmd;
  std::vector<std::string> expected;  // empty: an error
};

TEST(BundleSpec, MergesEntryPointAndCommandLikeDocker) {
  const ArgsCase cases[] = {
      {"image only",
       R"({"name":"c"})",
       "{}",
       {"/bin/sh", "-c"},
       {"echo hi"},
       {"/bin/sh", "-c", "echo hi"}},
      {"command replaces the image's Cmd",
       R"({"name":"c","command":["date"]})",
       "{}",
       {"/entry"},
       {"ignored"},
       {"/entry", "date"}},
      {"entryPoint drops the image's Cmd",
       R"({"name":"c","entryPoint":["/app"]})",
       "{}",
       {"/entry"},
       {"ignored"},
       {"/app"}},
      {"entryPoint and command",
       R"({"name":"c","entryPoint":["/app"],"command":["-v"]})",
       "{}",
       {"/entry"},
       {"ignored"},
       {"/app", "-v"}},
      {"override command wins",
       R"({"name":"c","command":["a"]})",
       R"({"command":["b","c"]})",
       {},
       {"x"},
       {"b", "c"}},
      {"empty lists count as absent",
       R"({"name":"c","entryPoint":[],"command":[]})",
       "{}",
       {"/entry"},
       {"cmd"},
       {"/entry", "cmd"}},
      {"nothing to run", R"({"name":"c"})", "{}", {}, {}, {}},
  };
  for (const ArgsCase& test : cases) {
    SCOPED_TRACE(test.name);
    BundleInput input = base_input(test.container);
    input.overrides = object_from(test.overrides);
    input.image.entrypoint = test.image_entrypoint;
    input.image.cmd = test.image_cmd;
    auto spec = make_runtime_spec(input);
    if (test.expected.empty()) {
      ASSERT_FALSE(spec.has_value());
      EXPECT_NE(spec.error().message.find("no command"), std::string::npos);
      EXPECT_NE(spec.error().message.find("container c"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(spec.has_value()) << spec.error().message;
    EXPECT_EQ(strings(at(*spec, {"process", "args"})), test.expected);
  }
}

TEST(BundleSpec, EnvironmentLaterSourcesWin) {
  BundleInput input = base_input(
      R"({"name":"web","environment":[{"name":"A","value":"2"},{"name":"B","value":"3"}]})");
  input.image.env = {"PATH=/opt/bin", "A=1", "EMPTY="};
  input.overrides = object_from(R"({"environment":[{"name":"B","value":"4"}]})");
  input.extra_environment = {{"SECRET", "s"}, {"A", "from-secret"}};
  input.user.home = "/home/app";
  bj::object spec = spec_of(input);
  EXPECT_EQ(strings(at(spec, {"process", "env"})),
            (std::vector<std::string>{"PATH=/opt/bin", "A=from-secret", "EMPTY=", "B=4", "SECRET=s",
                                      "HOSTNAME=web-host", "HOME=/home/app"}));

  BundleInput bare = base_input();
  EXPECT_EQ(
      strings(at(spec_of(bare), {"process", "env"})),
      (std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "HOSTNAME=web-host", "HOME=/"}));
}

TEST(BundleSpec, WorkingDirectoryAndUser) {
  struct Case {
    const char* container;
    const char* image_dir;
    const char* expected;  // nullptr: an error
  };
  const Case cases[] = {
      {R"({"name":"c"})", "", "/"},
      {R"({"name":"c"})", "/srv", "/srv"},
      {R"({"name":"c","workingDirectory":"/app"})", "/srv", "/app"},
      {R"({"name":"c","workingDirectory":"app"})", "/srv", nullptr},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.container);
    BundleInput input = base_input(test.container);
    input.image.working_dir = test.image_dir;
    auto spec = make_runtime_spec(input);
    if (test.expected == nullptr) {
      EXPECT_FALSE(spec.has_value());
      continue;
    }
    ASSERT_TRUE(spec.has_value()) << spec.error().message;
    EXPECT_EQ(at(*spec, {"process", "cwd"}).as_string(), test.expected);
  }

  BundleInput input = base_input();
  input.user = ProcessUser{1000, 1001, {27, 100}, "/home/u"};
  bj::object spec = spec_of(input);
  EXPECT_EQ(at(spec, {"process", "user"}),
            bj::parse(R"({"uid":1000,"gid":1001,"additionalGids":[27,100]})"));

  oci::RuntimeConfig image;
  image.user = "nobody";
  EXPECT_EQ(effective_user(object_from(R"({"name":"c"})"), image), "nobody");
  EXPECT_EQ(effective_user(object_from(R"({"name":"c","user":"1000:1000"})"), image), "1000:1000");
}

TEST(BundleSpec, UlimitsAreClampedToTheAgentsHardLimits) {
  struct Case {
    const char* ulimit;
    const char* type;
    std::uint64_t soft;
    std::uint64_t hard;
  };
  const Case cases[] = {
      {R"({"name":"nofile","softLimit":1024,"hardLimit":4096})", "RLIMIT_NOFILE", 1024, 4096},
      {R"({"name":"nofile","softLimit":1024,"hardLimit":65536})", "RLIMIT_NOFILE", 1024, 20000},
      {R"({"name":"nofile","softLimit":30000,"hardLimit":65536})", "RLIMIT_NOFILE", 20000, 20000},
      {R"({"name":"core","softLimit":-1,"hardLimit":-1})", "RLIMIT_CORE", kUnlimited, kUnlimited},
      // No ceiling known for stack: taken as given.
      {R"({"name":"stack","softLimit":8388608,"hardLimit":8388608})", "RLIMIT_STACK", 8388608,
       8388608},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.ulimit);
    BundleInput input = base_input(std::string(R"({"name":"c","ulimits":[)") + test.ulimit + "]}");
    bj::object spec = spec_of(input);
    const bj::array& rlimits = at(spec, {"process", "rlimits"}).as_array();
    ASSERT_EQ(rlimits.size(), 1u);
    EXPECT_EQ(rlimits[0].at("type").as_string(), test.type);
    EXPECT_EQ(rlimits[0].at("soft").to_number<std::uint64_t>(), test.soft);
    EXPECT_EQ(rlimits[0].at("hard").to_number<std::uint64_t>(), test.hard);
  }
  EXPECT_FALSE(make_runtime_spec(base_input(R"({"name":"c","ulimits":[{"name":"bogus",
      "softLimit":1,"hardLimit":1}]})"))
                   .has_value());
}

std::uint64_t without(std::uint64_t caps, int capability) {
  return caps & ~(std::uint64_t{1} << capability);
}

TEST(BundleSpec, CapabilitiesStartFromDockersDefaults) {
  constexpr int kSysResource = 24;
  std::vector<std::string> defaults = docker_default_capabilities();
  std::sort(defaults.begin(), defaults.end());
  struct Case {
    const char* name;
    const char* linux_parameters;  // JSON
    std::uint64_t host_capabilities;
    std::vector<std::string> plus;   // beyond the defaults
    std::vector<std::string> minus;  // removed from the defaults
    bool drop_all = false;           // expected = plus only
    bool all = false;                // expected = every known cap the host has
    bool error = false;
  };
  const Case cases[] = {
      {"defaults", "{}", kAllCapabilities, {}, {}},
      {"add and drop",
       R"({"capabilities":{"add":["SYS_ADMIN","NET_ADMIN"],"drop":["NET_RAW"]}})",
       kAllCapabilities,
       {"CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
       {"CAP_NET_RAW"}},
      {"drop ALL keeps only the adds",
       R"({"capabilities":{"add":["CHOWN"],"drop":["ALL"]}})",
       kAllCapabilities,
       {"CAP_CHOWN"},
       {},
       true},
      {"add ALL minus drops",
       R"({"capabilities":{"add":["ALL"],"drop":["MKNOD"]}})",
       without(kAllCapabilities, kSysResource),
       {},
       {"CAP_MKNOD", "CAP_SYS_RESOURCE"},
       false,
       true},
      {"a capability the agent lacks",
       R"({"capabilities":{"add":["SYS_RESOURCE"]}})",
       without(kAllCapabilities, kSysResource),
       {},
       {},
       false,
       false,
       true},
      {"an unknown capability",
       R"({"capabilities":{"add":["FLY"]}})",
       kAllCapabilities,
       {},
       {},
       false,
       false,
       true},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.name);
    BundleInput input =
        base_input(std::string(R"({"name":"c","linuxParameters":)") + test.linux_parameters + "}");
    input.host_capabilities = test.host_capabilities;
    auto spec = make_runtime_spec(input);
    if (test.error) {
      EXPECT_FALSE(spec.has_value());
      continue;
    }
    ASSERT_TRUE(spec.has_value()) << spec.error().message;
    std::vector<std::string> effective =
        strings(at(*spec, {"process", "capabilities", "effective"}));
    std::sort(effective.begin(), effective.end());
    EXPECT_EQ(at(*spec, {"process", "capabilities", "bounding"}),
              at(*spec, {"process", "capabilities", "effective"}));
    if (test.all) {
      EXPECT_EQ(effective.size(), 41u - test.minus.size());
      for (const std::string& gone : test.minus) {
        EXPECT_EQ(std::count(effective.begin(), effective.end(), gone), 0) << gone;
      }
      continue;
    }
    std::vector<std::string> expected = test.drop_all ? std::vector<std::string>{} : defaults;
    for (const std::string& gone : test.minus) std::erase(expected, gone);
    expected.insert(expected.end(), test.plus.begin(), test.plus.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(effective, expected);
  }
}

bool seccomp_denies(const bj::object& spec, std::string_view syscall) {
  for (const bj::value& rule : at(spec, {"linux", "seccomp", "syscalls"}).as_array()) {
    if (rule.as_object().contains("args")) continue;
    auto names = strings(rule.at("names"));
    if (std::find(names.begin(), names.end(), syscall) != names.end()) return true;
  }
  return false;
}

TEST(BundleSpec, DefaultsAreDockersHardening) {
  bj::object spec = spec_of(base_input());
  EXPECT_TRUE(at(spec, {"process", "noNewPrivileges"}).as_bool());
  EXPECT_FALSE(at(spec, {"process", "terminal"}).as_bool());
  EXPECT_EQ(at(spec, {"linux", "seccomp", "defaultAction"}).as_string(), "SCMP_ACT_ALLOW");
  for (const char* denied : {"mount", "unshare", "setns", "kexec_load", "init_module", "bpf",
                             "keyctl", "clock_settime", "reboot", "open_by_handle_at"}) {
    EXPECT_TRUE(seccomp_denies(spec, denied)) << denied;
  }
  for (const char* allowed : {"read", "chroot", "ptrace"}) {
    EXPECT_FALSE(seccomp_denies(spec, allowed)) << allowed;
  }
  auto masked = strings(at(spec, {"linux", "maskedPaths"}));
  EXPECT_NE(std::find(masked.begin(), masked.end(), "/proc/kcore"), masked.end());
  auto readonly = strings(at(spec, {"linux", "readonlyPaths"}));
  EXPECT_NE(std::find(readonly.begin(), readonly.end(), "/proc/sysrq-trigger"), readonly.end());
  EXPECT_EQ(strings(find_mount(spec, "/sys")->at("options")).back(), "ro");
  EXPECT_FALSE(at(spec, {"root", "readonly"}).as_bool());
  EXPECT_EQ(at(spec, {"root", "path"}).as_string(), "/data/containers/t1/web/merged");

  // clone3 fails with ENOSYS so that libc falls back to clone, whose namespace flags are denied.
  std::size_t clone_rules = 0;
  for (const bj::value& rule : at(spec, {"linux", "seccomp", "syscalls"}).as_array()) {
    auto names = strings(rule.at("names"));
    if (names == std::vector<std::string>{"clone3"}) {
      EXPECT_EQ(rule.at("errnoRet"), ENOSYS);
    }
    if (names == std::vector<std::string>{"clone"}) ++clone_rules;
  }
  EXPECT_EQ(clone_rules, 7u);

  BundleInput admin =
      base_input(R"({"name":"c","linuxParameters":{"capabilities":{"add":["SYS_ADMIN"]}}})");
  bj::object admin_spec = spec_of(admin);
  EXPECT_FALSE(seccomp_denies(admin_spec, "mount"));
  EXPECT_TRUE(seccomp_denies(admin_spec, "kexec_load"));
}

TEST(BundleSpec, PrivilegedDropsTheHardening) {
  BundleInput input = base_input(R"({"name":"c","privileged":true})");
  input.host_capabilities = without(kAllCapabilities, 24);
  bj::object spec = spec_of(input);
  EXPECT_FALSE(at(spec, {"process", "noNewPrivileges"}).as_bool());
  const bj::object& linux_section = spec.at("linux").as_object();
  EXPECT_FALSE(linux_section.contains("seccomp"));
  EXPECT_FALSE(linux_section.contains("maskedPaths"));
  EXPECT_FALSE(linux_section.contains("readonlyPaths"));
  EXPECT_EQ(at(spec, {"process", "capabilities", "effective"}).as_array().size(), 40u);
  EXPECT_EQ(at(spec, {"linux", "resources", "devices"}),
            bj::parse(R"([{"allow":true,"access":"rwm"}])"));
  EXPECT_EQ(strings(find_mount(spec, "/sys")->at("options")).back(), "rw");
}

TEST(BundleSpec, MountsNamespacesAndLabels) {
  BundleInput input = base_input(R"({"name":"c","readonlyRootFilesystem":true,
      "dockerLabels":{"team":"core"},
      "systemControls":[{"namespace":"net.core.somaxconn","value":"1024"}],
      "linuxParameters":{"sharedMemorySize":256,"tmpfs":[
          {"containerPath":"/scratch","size":32,"mountOptions":["exec","noatime","mode"]}]}})");
  bj::object spec = spec_of(input);
  EXPECT_TRUE(at(spec, {"root", "readonly"}).as_bool());
  EXPECT_EQ(spec.at("hostname").as_string(), "web-host");
  EXPECT_EQ(spec.at("annotations"), bj::parse(R"({"team":"core"})"));
  EXPECT_EQ(at(spec, {"linux", "sysctl"}), bj::parse(R"({"net.core.somaxconn":"1024"})"));

  std::vector<std::string> destinations;
  for (const bj::value& mount : spec.at("mounts").as_array()) {
    destinations.emplace_back(mount.at("destination").as_string());
  }
  EXPECT_EQ(destinations,
            (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                      "/sys", "/sys/fs/cgroup", "/etc/hosts", "/etc/hostname",
                                      "/etc/resolv.conf", "/scratch"}));
  EXPECT_EQ(strings(find_mount(spec, "/dev/shm")->at("options")).back(), "size=256m");
  EXPECT_EQ(strings(find_mount(spec, "/scratch")->at("options")),
            (std::vector<std::string>{"nosuid", "nodev", "exec", "noatime", "size=32m"}));
  const bj::object* hosts = find_mount(spec, "/etc/hosts");
  EXPECT_EQ(hosts->at("source").as_string(), "/data/containers/t1/web/bundle/hosts");
  EXPECT_EQ(strings(hosts->at("options")).back(), "ro");  // read-only root: read-only /etc files

  auto namespace_types = [](const bj::object& of) {
    std::vector<std::string> types;
    for (const bj::value& entry : at(of, {"linux", "namespaces"}).as_array()) {
      types.emplace_back(entry.at("type").as_string());
    }
    return types;
  };
  EXPECT_EQ(namespace_types(spec),
            (std::vector<std::string>{"pid", "ipc", "uts", "mount", "network"}));
  input.network_mode = NetworkMode::kHost;
  EXPECT_EQ(namespace_types(spec_of(input)),
            (std::vector<std::string>{"pid", "ipc", "uts", "mount"}));
  // A bridge endpoint: the network namespace the agent prepared, joined by path.
  input.network_mode = NetworkMode::kNone;
  input.network_namespace = "/run/netns/wharf-task-web";
  EXPECT_EQ(at(spec_of(input), {"linux", "namespaces"}).as_array().back(),
            (bj::object{{"type", "network"}, {"path", "/run/netns/wharf-task-web"}}));
  EXPECT_EQ(strings(find_mount(spec_of(base_input()), "/dev/shm")->at("options")).back(),
            "size=64m");
}

TEST(BundleSpec, CgroupLimits) {
  struct Case {
    const char* container;
    const char* overrides;
    std::optional<std::int64_t> task_memory;
    const char* expected_resources;  // cpu and memory; nullptr: an error
  };
  const Case cases[] = {
      {R"({"name":"c","cpu":0})", "{}", std::nullopt, R"({"cpu":{"shares":2}})"},
      {R"({"name":"c","cpu":1})", "{}", std::nullopt, R"({"cpu":{"shares":2}})"},
      {R"({"name":"c","cpu":512,"memory":256})", "{}", std::nullopt,
       R"({"cpu":{"shares":512},"memory":{"limit":268435456}})"},
      {R"({"name":"c","memoryReservation":128})", "{}", 512,
       R"({"cpu":{"shares":2},"memory":{"reservation":134217728}})"},
      {R"({"name":"c","memory":256,"memoryReservation":64,"linuxParameters":{"maxSwap":0,
          "swappiness":10}})",
       "{}", std::nullopt,
       R"({"cpu":{"shares":2},"memory":{"limit":268435456,"reservation":67108864,
           "swap":268435456,"swappiness":10}})"},
      {R"({"name":"c","cpu":128,"memory":256})", R"({"cpu":1024,"memory":64})", std::nullopt,
       R"({"cpu":{"shares":1024},"memory":{"limit":67108864}})"},
      {R"({"name":"c","memory":1024})", "{}", 512, nullptr},
      {R"({"name":"c","memory":64,"memoryReservation":128})", "{}", std::nullopt, nullptr},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.container);
    BundleInput input = base_input(test.container);
    input.overrides = object_from(test.overrides);
    input.task_memory_mib = test.task_memory;
    auto spec = make_runtime_spec(input);
    if (test.expected_resources == nullptr) {
      EXPECT_FALSE(spec.has_value());
      continue;
    }
    ASSERT_TRUE(spec.has_value()) << spec.error().message;
    bj::object resources = at(*spec, {"linux", "resources"}).as_object();
    resources.erase("devices");
    EXPECT_EQ(resources, bj::parse(test.expected_resources)) << bj::serialize(resources);
    EXPECT_EQ(at(*spec, {"linux", "cgroupsPath"}).as_string(), "/wharf/t1/c");
  }
}

TEST(BundleSpec, InitProcessNeedsAnInitBinary) {
  BundleInput input = base_input(R"({"name":"c","linuxParameters":{"initProcessEnabled":true}})");
  auto refused = make_runtime_spec(input);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnsupportedFeature);

  input.init_binary = "/usr/bin/tini-static";
  bj::object spec = spec_of(input);
  EXPECT_EQ(strings(at(spec, {"process", "args"})),
            (std::vector<std::string>{"/sbin/wharf-init", "--", "/bin/server"}));
  const bj::object* init = find_mount(spec, "/sbin/wharf-init");
  ASSERT_NE(init, nullptr);
  EXPECT_EQ(init->at("source").as_string(), "/usr/bin/tini-static");
}

TEST(BundleSpec, RefusesRelativePaths) {
  BundleInput input = base_input();
  input.cgroup_parent = "wharf/t1";
  EXPECT_FALSE(make_runtime_spec(input).has_value());
  input = base_input();
  input.rootfs = "merged";
  EXPECT_FALSE(make_runtime_spec(input).has_value());
}

constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "broken line\n"
    "app:x:1000:1000::/home/app:/bin/sh\n"
    "svc:x:1001:1002::/:/sbin/nologin\n";
constexpr std::string_view kGroup =
    "root:x:0:\n"
    "app:x:1000:\n"
    "staff:x:50:app,svc\n"
    "docker:x:999:app\n"
    "svcgroup:x:1002:\n";

TEST(ResolveUser, NamesAndNumbersAgainstPasswdAndGroup) {
  struct Case {
    const char* user;
    std::optional<ProcessUser> expected;  // nullopt: an error
  };
  const Case cases[] = {
      {"", ProcessUser{0, 0, {}, "/root"}},
      {"root", ProcessUser{0, 0, {}, "/root"}},
      {"app", ProcessUser{1000, 1000, {50, 999}, "/home/app"}},
      {"1000", ProcessUser{1000, 1000, {50, 999}, "/home/app"}},
      {"app:staff", ProcessUser{1000, 50, {999}, "/home/app"}},
      {"svc:0", ProcessUser{1001, 0, {50}, "/"}},
      {"4242", ProcessUser{4242, 0, {}, "/"}},
      {"4242:4343", ProcessUser{4242, 4343, {}, "/"}},
      {"nobody", std::nullopt},
      {"app:nogroup", std::nullopt},
      {"99999999999", std::nullopt},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.user);
    auto resolved = resolve_user(test.user, kPasswd, kGroup);
    if (!test.expected) {
      EXPECT_FALSE(resolved.has_value());
      continue;
    }
    ASSERT_TRUE(resolved.has_value()) << resolved.error().message;
    EXPECT_EQ(*resolved, *test.expected);
  }
  // No passwd at all (a scratch image): numbers work, names do not.
  EXPECT_EQ(resolve_user("10:20", "", "").value(), (ProcessUser{10, 20, {}, "/"}));
  EXPECT_FALSE(resolve_user("app", "", "").has_value());
}

TEST(BundleFilesTest, HostsHostnameAndResolvConf) {
  HostFiles host{"127.0.0.1 localhost host-machine\n",
                 "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:2\n"};
  BundleInput input = base_input(R"({"name":"c",
      "extraHosts":[{"hostname":"db","ipAddress":"10.1.2.3"}]})");
  BundleFiles files = make_bundle_files(input, host);
  EXPECT_EQ(files.hostname, "web-host\n");
  EXPECT_EQ(files.hosts,
            "127.0.0.1\tlocalhost web-host\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "10.1.2.3\tdb\n");
  EXPECT_EQ(files.resolv_conf, host.resolv_conf);
  input.ip_address = "172.30.0.5";  // a bridge endpoint's address names the container too
  EXPECT_EQ(make_bundle_files(input, host).hosts,
            "127.0.0.1\tlocalhost web-host\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "172.30.0.5\tweb-host\n10.1.2.3\tdb\n");

  input = base_input(R"({"name":"c","dnsServers":["1.1.1.1","8.8.8.8"]})");
  input.network_mode = NetworkMode::kHost;
  files = make_bundle_files(input, host);
  EXPECT_EQ(files.hosts, host.hosts);
  EXPECT_EQ(files.resolv_conf,
            "search corp.example\noptions ndots:2\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n");

  input = base_input(R"({"name":"c","dnsSearchDomains":["a.example","b.example"]})");
  EXPECT_EQ(make_bundle_files(input, host).resolv_conf,
            "nameserver 10.0.0.2\noptions ndots:2\nsearch a.example b.example\n");
}

}  // namespace
}  // namespace wharf::agent
