/* wharf-shim: keeps one container's exit status when the agent is not there to see it.
 *
 *   wharf-shim EXIT_FILE PID_FILE -- RUNTIME ARGS...   (runc ... create --pid-file PID_FILE ID)
 *
 * The agent starts the shim instead of `runc create`. The shim forks a monitor that becomes a
 * session leader and a child subreaper, runs the runtime command, and waits for it. When the
 * runtime exits, the container's init (forked by the runtime) re-parents to the monitor. The
 * monitor tells the first process how `create` went, and that process exits with the runtime's
 * status, so the agent sees `wharf-shim` finish exactly as it would see `runc create` finish.
 * The monitor then stays the init's parent, and when the init exits it writes
 * "EXIT_CODE SIGNAL\n" to EXIT_FILE (through a rename, so readers see all of it or nothing):
 * the code as Docker reports it (128 + signal when a signal killed it), SIGNAL 0 when none did.
 *
 * Because the monitor is in its own session and no longer the agent's child, killing or
 * restarting the agent leaves it running; the next agent reads EXIT_FILE. It is plain C and
 * statically linked so that one per container costs a few hundred KiB at most.
 *
 *   wharf-shim --cgroup-v1 EXIT_FILE PID_FILE -- RUNTIME ARGS...
 *   wharf-shim --cgroup-v1 -- RUNTIME ARGS...          (no monitor: the runtime replaces the shim)
 *
 * On a hybrid host (cgroup v1 hierarchies, plus cgroup2 at /sys/fs/cgroup/unified), crun refuses
 * to start containers when the cgroup2 mount holds a controller. With --cgroup-v1 the runtime runs
 * in a mount namespace of its own without that mount, where the host looks like a cgroup v1 one:
 * crun then uses the v1 hierarchies, which hold every controller Wharf sets limits with. Only the
 * runtime process gets the namespace (the monitor stays in the host's), and the container's own
 * namespace is made from it and then pivots away from it, so nothing is pinned once the runtime
 * exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kUsage = 125, kFailed = 126 };

static int write_all(int fd, const void* data, size_t size) {
  const char* bytes = data;
  while (size > 0) {
    ssize_t written = write(fd, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return -1;
    bytes += written;
    size -= (size_t)written;
  }
  return 0;
}

static pid_t read_pid_file(const char* path) {
  char text[32] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = read(fd, text, sizeof text - 1);
  close(fd);
  if (got <= 0) return -1;
  long pid = strtol(text, NULL, 10);
  return pid > 0 ? (pid_t)pid : -1;
}

static void write_exit_file(const char* path, int code, int signal_number) {
  char temp[4096];
  char text[64];
  if (snprintf(temp, sizeof temp, "%s.tmp", path) >= (int)sizeof temp) return;
  int length = snprintf(text, sizeof text, "%d %d\n", code, signal_number);
  int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  int failed = write_all(fd, text, (size_t)length) != 0 || fsync(fd) != 0;
  close(fd);
  if (failed || rename(temp, path) != 0) unlink(temp);
}

static void quiet_stdio(void) {
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return;
  for (int fd = 0; fd <= 2; ++fd) dup2(null_fd, fd);
  if (null_fd > 2) close(null_fd);
}

static const char kUnifiedMount[] = "/sys/fs/cgroup/unified";

/* Moves this process into a mount namespace where the host's cgroup2 mount of a hybrid layout is
 * gone. The copied mounts are made private first, so the unmount stays in this namespace. */
static int hide_cgroup2_mount(void) {
  if (unshare(CLONE_NEWNS) != 0) return -1;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;
  if (umount2(kUnifiedMount, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) return -1;
  return 0;
}

static void exec_runtime(char** runtime_argv, int cgroup_v1) {
  if (cgroup_v1 && hide_cgroup2_mount() != 0) {
    fprintf(stderr, "wharf-shim: hiding %s from the runtime: %s\n", kUnifiedMount, strerror(errno));
    _exit(kFailed);
  }
  execvp(runtime_argv[0], runtime_argv);
  fprintf(stderr, "wharf-shim: running %s: %s\n", runtime_argv[0], strerror(errno));
  _exit(127);
}

/* Runs the runtime, reports its status through `report`, then waits for the init. */
static int monitor(const char* exit_file, const char* pid_file, char** runtime_argv, int cgroup_v1,
                   int report) {
  setsid();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return kFailed;
  pid_t runtime = fork();
  if (runtime < 0) return kFailed;
  if (runtime == 0) {
    close(report);
    exec_runtime(runtime_argv, cgroup_v1);
  }
  int status = 0;
  while (waitpid(runtime, &status, 0) < 0) {
    if (errno != EINTR) return kFailed;
  }
  int runtime_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_t init = runtime_code == 0 ? read_pid_file(pid_file) : -1;
  if (runtime_code == 0 && init <= 0) runtime_code = kFailed;
  write_all(report, &runtime_code, sizeof runtime_code);
  close(report);
  if (runtime_code != 0) return runtime_code;

  quiet_stdio(); /* the container's log files stay open only in the container */
  for (;;) {
    pid_t exited = waitpid(-1, &status, 0);
    if (exited < 0) {
      if (errno == EINTR) continue;
      write_exit_file(exit_file, -1, 0); /* the init vanished unseen: status unknown */
      return 0;
    }
    if (exited != init) continue; /* an orphan of the runtime's, reaped */
    if (WIFEXITED(status)) {
      write_exit_file(exit_file, WEXITSTATUS(status), 0);
    } else {
      write_exit_file(exit_file, 128 + WTERMSIG(status), WTERMSIG(status));
    }
    return 0;
  }
}

int main(int argc, char** argv) {
  int cgroup_v1 = argc > 1 && strcmp(argv[1], "--cgroup-v1") == 0;
  if (cgroup_v1) {
    --argc;
    ++argv;
  }
  if (cgroup_v1 && argc > 2 && strcmp(argv[1], "--") == 0) exec_runtime(argv + 2, 1);
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr,
            "usage: wharf-shim [--cgroup-v1] EXIT_FILE PID_FILE -- RUNTIME ARGS...\n"
            "       wharf-shim --cgroup-v1 -- RUNTIME ARGS...\n");
    return kUsage;
  }
  signal(SIGPIPE, SIG_IGN);
  unlink(argv[1]);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return kFailed;
  pid_t child = fork();
  if (child < 0) return kFailed;
  if (child == 0) {
    close(pipe_fds[0]);
    _exit(monitor(argv[1], argv[2], argv + 4, cgroup_v1, pipe_fds[1]));
  }
  close(pipe_fds[1]);
  int code = kFailed;
  ssize_t got;
  do {
    got = read(pipe_fds[0], &code, sizeof code);
  } while (got < 0 && errno == EINTR);
  if (got != (ssize_t)sizeof code) code = kFailed;
  /* On failure the monitor has exited too; reap it so it leaves no zombie. */
  if (code != 0) waitpid(child, NULL, 0);
  return code;
}
