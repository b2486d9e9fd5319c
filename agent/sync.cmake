# File sync in the node agent (library crawler_agent_sync): the follower that
# fetches wanted blobs from the peer's agent, copies to the peer in the sync
# replication modes, the scrub, the orphan sweep, the store's inventory.
# Included by agent/CMakeLists.txt.
add_library(crawler_agent_sync STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/file_sync.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/node_db.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/node_sql_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/node_view.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/peer_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/token_file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/store_id.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/store_ops.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/inventory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/follower.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/replicator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/pacer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/scrub.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/orphan_sweep.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/status_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/alert_sender.cpp)
target_include_directories(crawler_agent_sync PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(crawler_agent_sync PUBLIC crawler_common PkgConfig::PQ PkgConfig::CURL
  nlohmann_json::nlohmann_json Threads::Threads)

if(CRAWLER_BUILD_TESTS)
  add_executable(agent-sync-tests
    ${CMAKE_CURRENT_LIST_DIR}/tests/sync_store_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/sync_logic_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/sync_fetch_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/sync_db_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/alert_sender_test.cpp)
  target_link_libraries(agent-sync-tests PRIVATE crawler_agent_sync GTest::gtest GTest::gtest_main)
  # The fetch tests run a real nginx (nginx-light) on a free port.
  find_program(CRAWLER_NGINX nginx PATHS /usr/sbin /usr/local/sbin)
  if(CRAWLER_NGINX)
    target_compile_definitions(agent-sync-tests PRIVATE CRAWLER_NGINX="${CRAWLER_NGINX}")
  endif()
  gtest_discover_tests(agent-sync-tests DISCOVERY_TIMEOUT 30)
endif()
