# crawler-ha backup: database backups with pgBackRest (setup, run, list),
# the pgBackRest helpers and the child-process runner they use. Included by
# agent/CMakeLists.txt after the libraries it builds on.
add_library(crawler_agent_backup STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/command_backup.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/backup_setup.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/backup_run.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/pgbackrest.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/child_process.cpp)
target_include_directories(crawler_agent_backup PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
# cli: the node strings and the list's calls; sync: NodeDb; server:
# private_file(), the rule for files of secrets (the passphrase's too).
target_link_libraries(crawler_agent_backup PUBLIC crawler_agent_cli crawler_agent_sync crawler_agent_server
  Boost::program_options nlohmann_json::nlohmann_json)

if(CRAWLER_BUILD_TESTS)
  add_executable(agent-backup-tests ${CMAKE_CURRENT_LIST_DIR}/tests/pgbackrest_test.cpp)
  target_link_libraries(agent-backup-tests PRIVATE crawler_agent_backup GTest::gtest GTest::gtest_main)
  gtest_discover_tests(agent-backup-tests DISCOVERY_TIMEOUT 30)
endif()

# The blobs of a backup: their object format (zstd inside AES-256-GCM) and
# their place in the repository (copy, manifests, verify, retention).
# libzstd from Debian's libzstd-dev, found through pkg-config.
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
target_sources(crawler_agent_backup PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/blob_crypto.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/blob_backup.cpp)
target_link_libraries(crawler_agent_backup PUBLIC OpenSSL::Crypto PkgConfig::ZSTD)
if(CRAWLER_BUILD_TESTS)
  target_sources(agent-backup-tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tests/blob_backup_test.cpp)
endif()

# The agent's schedule of backups: a thread of `crawler-ha agent` that runs
# `crawler-ha backup run` on whichever node is the primary.
target_sources(crawler_agent_backup PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/backup_scheduler.cpp)
if(CRAWLER_BUILD_TESTS)
  target_sources(agent-backup-tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tests/backup_scheduler_test.cpp)
endif()

# Restores: `crawler-ha restore` and `crawler-ha backup test-restore`, the
# choice of the backup, and the restored cluster started apart.
target_sources(crawler_agent_backup PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/command_restore.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/backup_restore_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/backup_schedule_command.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/restore_steps.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/restore_plan.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/scratch_server.cpp)
if(CRAWLER_BUILD_TESTS)
  target_sources(agent-backup-tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tests/restore_plan_test.cpp)
endif()
