# The node agent's HTTP side: settings, the application port's server
# (Beast over Asio, TLS by OpenSSL) and the blob routes, and the commands
# main.cpp dispatches to. Included by agent/CMakeLists.txt.
# The OpenAPI document is served as docs/openapi.json holds it: compiled in
# from that file, re-read whenever it changes.
set(CRAWLER_OPENAPI_FILE ${CMAKE_CURRENT_LIST_DIR}/../docs/openapi.json)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CRAWLER_OPENAPI_FILE})
file(READ ${CRAWLER_OPENAPI_FILE} CRAWLER_OPENAPI_JSON)
configure_file(${CMAKE_CURRENT_LIST_DIR}/src/server/openapi_document.cpp.in
  ${CMAKE_CURRENT_BINARY_DIR}/openapi_document.cpp @ONLY)

# The dashboard (GET /) is served as agent/web/dashboard.html holds it:
# compiled in, re-read whenever it changes.
set(CRAWLER_DASHBOARD_FILE ${CMAKE_CURRENT_LIST_DIR}/web/dashboard.html)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CRAWLER_DASHBOARD_FILE})
file(READ ${CRAWLER_DASHBOARD_FILE} CRAWLER_DASHBOARD_HTML)
configure_file(${CMAKE_CURRENT_LIST_DIR}/src/server/dashboard_page.cpp.in
  ${CMAKE_CURRENT_BINARY_DIR}/dashboard_page.cpp @ONLY)

add_library(crawler_agent_server STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_agent.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_version.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/command_token.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/listen_address.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/client_networks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/rate_limiter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/bearer_token.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/api_tokens.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/byte_range.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/blob_name.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/router.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/tls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/responses.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/connection.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/request_handler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/blob_put.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/blob_get.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/blob_queries.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/blob_bundle_route.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/request_body.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/query_string.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/ha_routes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/prometheus_text.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/metrics_route.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/thumbnailer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/api_calls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/app_routes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/server/lag_history.cpp
  ${CMAKE_CURRENT_BINARY_DIR}/dashboard_page.cpp
  ${CMAKE_CURRENT_BINARY_DIR}/openapi_document.cpp)
target_include_directories(crawler_agent_server PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(crawler_agent_server PUBLIC crawler_common Boost::boost Boost::program_options
  OpenSSL::SSL OpenSSL::Crypto nlohmann_json::nlohmann_json Threads::Threads)
# libvips: the thumbnails (PUBLIC: the tests make their images with it).
target_link_libraries(crawler_agent_server PUBLIC PkgConfig::VIPS)

if(CRAWLER_BUILD_TESTS)
  add_executable(agent-server-tests
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_units_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/prometheus_text_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_config_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_test_harness.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_http_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_put_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_bundle_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/server_access_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/lag_history_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tests/thumbnailer_test.cpp)
  # crawler_agent_sync: the follower's client reads the bundle route.
  target_link_libraries(agent-server-tests PRIVATE crawler_agent_server crawler_agent_sync PkgConfig::CURL
    GTest::gtest GTest::gtest_main)
  gtest_discover_tests(agent-server-tests DISCOVERY_TIMEOUT 30)
endif()
