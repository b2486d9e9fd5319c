// crawler-worker: the command line, then one of the commands
// (commands.hpp: crawl, run, status, export), or help and version.
#include <curl/curl.h>

#include <clocale>
#include <cstdlib>
#include <iostream>

#include "crawler/commands.hpp"
#include "crawler/log.hpp"
#include "crawler/options.hpp"

using namespace crawler;

int main(int argc, char* argv[]) {
  std::setlocale(LC_CTYPE, "C.UTF-8");  // libidn2 (punycode) needs UTF-8
  Command cmd;
  try {
    cmd = parse_command_line(argc, argv);
  } catch (const std::exception& e) {
    report_error(e.what());
    return 2;
  }
  if (cmd.name == "help") {
    std::cout << cmd.help_text;
    return 0;
  }
  if (cmd.name == "version") {
    std::cout << "crawler-worker " << CRAWLER_VERSION << "\n";
    return 0;
  }
  set_log_level(cmd.worker.log_level);
  // kSkipVipsModules: libvips opens every dynamic module it has at start
  // (ImageMagick, poppler, OpenSlide, JPEG XL, HEIF): 20-30 ms of CPU for
  // loaders the crawler never uses. With VIPSHOME elsewhere it finds none;
  // the HEIF one is opened when the first AVIF or HEIC image comes. Set
  // here, before any thread starts.
  if (!std::getenv("VIPSHOME")) ::setenv("VIPSHOME", "/nonexistent/crawler-worker", 0);
  curl_global_init(CURL_GLOBAL_DEFAULT);  // libvips starts on a file thread (ImagePipeline)
  int rc = 0;
  if (cmd.name == "crawl") rc = run_crawl_command(cmd);
  else if (cmd.name == "run") rc = run_service_command(cmd, argc, argv);
  else if (cmd.name == "export") rc = run_export_command(cmd);
  else rc = run_status_command(cmd);
  curl_global_cleanup();
  return rc;
}
