# The crawler-ha commands that show and steer the cluster (status, check,
# events, pause and resume, switchover, uri):
# SQL to every node given, on threads of their own. Included by
# agent/CMakeLists.txt.
add_library(crawler_agent_cli STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/cluster_options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/byte_size_text.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/cluster_nodes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/cluster_snapshot.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_status.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_check.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_events.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_pause.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_switchover.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_uri.cpp)
target_include_directories(crawler_agent_cli PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(crawler_agent_cli PUBLIC crawler_agent_sync Boost::program_options
  nlohmann_json::nlohmann_json Threads::Threads)

if(CRAWLER_BUILD_TESTS)
  add_executable(agent-cli-tests ${CMAKE_CURRENT_LIST_DIR}/tests/cluster_nodes_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/cluster_commands_test.cpp)
  target_link_libraries(agent-cli-tests PRIVATE crawler_agent_cli GTest::gtest GTest::gtest_main)
  gtest_discover_tests(agent-cli-tests DISCOVERY_TIMEOUT 30)
endif()
