// Running another program (pgBackRest) from a command: execve() with the
// arguments as given, no shell in between, an environment the caller
// chose in full, both outputs captured.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace crawler::agent {

struct ChildResult {
  bool started = false;  // false: it could not be run at all (see error)
  int exit_status = -1;  // its exit status when it exited
  int signal = 0;        // the signal that ended it, 0 when it exited
  std::string out, err;  // what it wrote on stdout and stderr (each cut at the cap, see run_child)
  std::string error;     // why it could not be run
  bool ok() const { return started && signal == 0 && exit_status == 0; }
  // One line saying how it ended: "exit status 1", "killed by signal 9",
  // or why it did not start.
  std::string how() const;
};

// Runs `argv[0]`, an absolute path, with the arguments `argv` and exactly
// the environment `env` ("NAME=value" each; nothing is inherited), stdin
// from /dev/null and no other descriptor of this process open in it, and
// waits for it to end. Its stdout and stderr are read as they come (a
// child never blocks on a full pipe); at most `max_output` bytes of each
// are kept, the rest read and dropped. Never throws for the child's sake:
// a program that cannot be run comes back with started false.
ChildResult run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      std::size_t max_output = 4 * 1024 * 1024);

// The first executable regular file named `name` in the directories of
// `path` (a PATH value, ':'-separated; empty entries are skipped, not the
// current directory), or nothing.
std::optional<std::string> find_in_path(const std::string& name, const std::string& path);

}  // namespace crawler::agent
