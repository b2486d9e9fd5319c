#include "crawler/config_file.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace po = boost::program_options;

namespace crawler {
namespace {

// "--max_blob_bytes=1" -> "--max-blob-bytes=1": only the name part, never
// a value (a path may well hold an underscore).
std::string dashed_argument(const std::string& arg) {
  if (arg.rfind("--", 0) != 0) return arg;
  std::string out = arg;
  std::size_t end = std::min(out.find('='), out.size());
  std::replace(out.begin() + 2, out.begin() + static_cast<std::ptrdiff_t>(end), '_', '-');
  return out;
}

// "max_blob_bytes = 1" -> "max-blob-bytes = 1"; comments and lines
// without `=` stay as they are.
std::string dashed_key(std::string line) {
  std::size_t eq = line.find('=');
  std::size_t hash = line.find('#');
  if (eq == std::string::npos || hash < eq) return line;
  std::replace(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(eq), '_', '-');
  return line;
}

}  // namespace

po::variables_map read_config(const std::vector<std::string>& args,
                              const po::options_description& options,
                              const std::string& config_option) {
  std::vector<std::string> dashed;
  dashed.reserve(args.size());
  for (const std::string& a : args) dashed.push_back(dashed_argument(a));

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(dashed).options(options).run(), vm);
  } catch (const po::error& e) {
    throw ConfigError(std::string("command line: ") + e.what());
  }
  if (vm.count(config_option)) {
    const std::string path = vm[config_option].as<std::string>();
    std::ifstream in(path);
    if (!in) throw ConfigError("cannot read config file " + path);
    // The parser checks each key against `options` as it reads: the keys
    // are dashed before it sees them.
    std::stringstream text;
    for (std::string line; std::getline(in, line);) text << dashed_key(line) << '\n';
    try {
      // store() keeps a value already stored: the command line's wins.
      po::store(po::parse_config_file(text, options), vm);
    } catch (const po::error& e) {
      throw ConfigError("config file " + path + ": " + e.what());
    }
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(e.what());
  }
  return vm;
}

}  // namespace crawler
