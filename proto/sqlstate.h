/* The SQLSTATEs ringbouncer sends to clients. */
#pragma once

#define SQLSTATE_PROTOCOL_VIOLATION      "08P01"
#define SQLSTATE_CONNECTION_FAILURE      "08006"
#define SQLSTATE_CANNOT_CONNECT_NOW      "57P03"
#define SQLSTATE_ADMIN_SHUTDOWN          "57P01"
#define SQLSTATE_QUERY_CANCELED          "57014"
#define SQLSTATE_INVALID_AUTH_SPEC       "28000"
#define SQLSTATE_INVALID_PASSWORD        "28P01"
#define SQLSTATE_INVALID_CATALOG_NAME    "3D000"
#define SQLSTATE_TOO_MANY_CONNECTIONS    "53300"
#define SQLSTATE_FEATURE_NOT_SUPPORTED   "0A000"
#define SQLSTATE_INTERNAL_ERROR          "XX000"
#define SQLSTATE_OUT_OF_MEMORY           "53200"
#define SQLSTATE_LIMIT_EXCEEDED          "53400"   /* configuration_limit_exceeded */
#define SQLSTATE_INSUFFICIENT_PRIVILEGE  "42501"
#define SQLSTATE_PROGRAM_LIMIT_EXCEEDED  "54000"
#define SQLSTATE_IDLE_IN_TRANSACTION     "25P03"   /* idle_in_transaction_session_timeout */
#define SQLSTATE_READ_ONLY_TRANSACTION   "25006"   /* read_only_sql_transaction */
#define SQLSTATE_DUPLICATE_PSTATEMENT    "42P05"   /* duplicate_prepared_statement */
