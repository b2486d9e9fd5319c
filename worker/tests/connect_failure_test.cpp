// classify_connect_failure() on libpq 15's own messages, as PQerrorMessage()
// gave them against real servers (t/251 checks the same cases end to end).
#include <gtest/gtest.h>

#include "crawler/connect_failure.hpp"

using crawler::classify_connect_failure;

TEST(ConnectFailure, SettingsThatCannotWorkArePermanent) {
  for (const char* m : {
           "missing \"=\" after \"x\" in connection info string\n",
           "invalid connection option \"hots\"\n",
           "invalid sslmode value: \"bogus\"\n",
           "invalid port number: \"abc\"\n",
           "invalid integer value \"x\" for connection option \"connect_timeout\"\n",
           "could not translate host name \"nohost.invalid\" to address: Name or service not known\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for "
           "user \"crawler\"\n",
           "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  database \"nodb\" does not "
           "exist\n",
           "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  role \"nobody\" does not exist\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  pg_hba.conf rejects connection for "
           "host \"127.0.0.1\", user \"x\", database \"y\", no encryption\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf entry for host "
           "\"10.0.0.9\", user \"x\", database \"y\", SSL off\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: fe_sendauth: no password supplied\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: server does not support SSL, but SSL was "
           "required\n",
           "connection to server at \"db1\" (10.0.0.5), port 5432 failed: SSL error: certificate verify failed\n",
           "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  role \"x\" is not permitted to "
           "log in\n",
           "the crawler_ha extension is not installed in database \"postgres\" on /tmp:5432",
       }) {
    EXPECT_TRUE(classify_connect_failure(m).permanent) << m;
  }
}

TEST(ConnectFailure, ADatabaseThatMayComeBackIsWaitedFor) {
  for (const char* m : {
           "connection to server at \"127.0.0.1\", port 55999 failed: Connection refused\n"
           "\tIs the server running on that host and accepting TCP/IP connections?\n",
           "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or directory\n"
           "\tIs the server running locally and accepting connections on that socket?\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is starting up\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is shutting down\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  sorry, too many clients already\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  remaining connection slots are "
           "reserved for non-replication superuser connections\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: session is read-only\n",
           "connection to server at \"10.0.0.5\", port 5432 failed: timeout expired\n",
           "could not translate host name \"db1\" to address: Temporary failure in name resolution\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: server closed the connection unexpectedly\n"
           "\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n",
           "something libpq never said before\n",
       }) {
    EXPECT_FALSE(classify_connect_failure(m).permanent) << m;
  }
}

TEST(ConnectFailure, OneHostThatMayComeBackKeepsTheWait) {
  // db1 is down (it may come back and be the primary), db2 refuses the
  // password: waiting can still help.
  auto f = classify_connect_failure(
      "connection to server at \"127.0.0.1\", port 5433 failed: Connection refused\n"
      "\tIs the server running on that host and accepting TCP/IP connections?\n"
      "connection to server at \"127.0.0.1\", port 5434 failed: FATAL:  password authentication failed for user "
      "\"crawler\"\n");
  EXPECT_FALSE(f.permanent);
  EXPECT_EQ(f.reason,
            "connection to server at \"127.0.0.1\", port 5433 failed: Connection refused Is the server running on "
            "that host and accepting TCP/IP connections?; connection to server at \"127.0.0.1\", port 5434 failed: "
            "FATAL: password authentication failed for user \"crawler\"");
  // Both refuse the password: nothing will change by itself.
  EXPECT_TRUE(classify_connect_failure(
                  "connection to server at \"a\", port 1 failed: FATAL:  password authentication failed for user "
                  "\"c\"\nconnection to server at \"b\", port 1 failed: FATAL:  password authentication failed for "
                  "user \"c\"\n")
                  .permanent);
}

TEST(ConnectFailure, TheReasonIsOneLine) {
  auto f = classify_connect_failure("invalid sslmode value: \"bogus\"\n");
  EXPECT_EQ(f.reason, "invalid sslmode value: \"bogus\"");
  EXPECT_EQ(classify_connect_failure("").reason, "no reason given by libpq");
  EXPECT_FALSE(classify_connect_failure("").permanent);
}
