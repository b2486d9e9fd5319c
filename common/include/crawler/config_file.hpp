// Settings from a key = value config file and the command line, the
// command line winning, a mistake reported with the file and the line.
// crawler-ha reads its options this way; crawler-worker still has its own
// reader (worker/src/options.cpp) and is to move here.
#pragma once
#include <boost/program_options.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace crawler {

// A setting the user got wrong: the message is meant for them as it is
// (which file or option, and what was wrong with it).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses `args` (the command line after the program and command names)
// against `options`, then, when the option named `config_option` was given,
// the file it names (lines `key = value`, keys being long option names;
// `#` starts a comment). In both, `_` in a key reads as `-`, so
// `max_blob_bytes = 1` and `--max-blob-bytes 1` name the same option.
// Values from the command line win over the file's; notify() runs, so
// bound variables are set. Throws ConfigError naming the option or the
// file for an unknown option, a bad value or an unreadable file.
boost::program_options::variables_map read_config(
    const std::vector<std::string>& args, const boost::program_options::options_description& options,
    const std::string& config_option = "config");

}  // namespace crawler
