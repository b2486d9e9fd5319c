#include "crawler/agent/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace crawler::agent {

std::string ChildResult::how() const {
  if (!started) return "could not be run: " + error;
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exit status " + std::to_string(exit_status);
}

namespace {

// Both ends of a pipe, closed when it goes out of scope.
struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
};

}  // namespace

ChildResult run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      std::size_t max_output) {
  ChildResult r;
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    r.error = "the program must be named by an absolute path";
    return r;
  }
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls (a threaded parent's locks may be held).
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  Pipe out, err, report;
  if (::pipe2(out.fd, O_CLOEXEC) != 0 || ::pipe2(err.fd, O_CLOEXEC) != 0 || ::pipe2(report.fd, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    r.error = std::string("/dev/null: ") + std::strerror(errno);
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    ::close(devnull);
    return r;
  }
  if (pid == 0) {
    // dup2 clears close-on-exec on the copies; everything else of ours
    // closes at execve (close_range also catches descriptors opened
    // without O_CLOEXEC by libraries).
    if (::dup2(devnull, 0) < 0 || ::dup2(out.fd[1], 1) < 0 || ::dup2(err.fd[1], 2) < 0) ::_exit(127);
    int keep = report.fd[1];
    if (keep > 3) {
      if (::dup2(keep, 3) < 0) ::_exit(127);
      keep = 3;
    }
    ::fcntl(keep, F_SETFD, FD_CLOEXEC);
    ::close_range(keep + 1, ~0U, 0);
    // A caller that waits for its signals with sigwait() blocks them; the
    // program run must still end on SIGTERM like any other.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    // The parent learns why through the report pipe (closed by a
    // successful execve, so it reads nothing then).
    int e = errno;
    [[maybe_unused]] ssize_t n = ::write(keep, &e, sizeof e);
    ::_exit(127);
  }
  ::close(devnull);
  ::close(out.fd[1]);
  out.fd[1] = -1;
  ::close(err.fd[1]);
  err.fd[1] = -1;
  ::close(report.fd[1]);
  report.fd[1] = -1;

  int exec_errno = 0;
  ssize_t got;
  do got = ::read(report.fd[0], &exec_errno, sizeof exec_errno);
  while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;

  struct pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;  // the Pipe closes it
        --open_fds;
        continue;
      }
      std::size_t room = max_output > sinks[i]->size() ? max_output - sinks[i]->size() : 0;
      sinks[i]->append(buf, std::min(room, static_cast<std::size_t>(n)));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (exec_errno != 0) {
    r.error = argv[0] + ": " + std::strerror(exec_errno);
    return r;
  }
  r.started = true;
  if (WIFEXITED(status)) r.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

std::optional<std::string> find_in_path(const std::string& name, const std::string& path) {
  if (name.empty() || name.find('/') != std::string::npos) return std::nullopt;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty() || dir[0] != '/') continue;
    std::string candidate = dir + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return std::nullopt;
}

}  // namespace crawler::agent
