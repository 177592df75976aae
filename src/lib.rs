//! gatewarden: users, roles, permissions, HMI client sessions, the licence seat limit and the
//! supervisor lock for an industrial edge gateway, in one daemon with its own CLI.

pub mod accounts; // users, the built-in admin, passwords, tokens, API keys, lockout
pub mod api; // the route table of every method, and the handlers, shared by both transports
pub mod authz; // roles, grants, selectors and the compiled index that answers checks
pub mod cli; // the command line: `serve`, and the control-socket client for everything else
pub mod config; // TOML config with defaults and precise errors
pub mod contract; // the public contract as types: params, results, events, the actor shape
pub mod csvfile; // the plant's CSV files: resource inventories and lists
pub mod daemon; // wiring: socket server, signals, systemd notification, logging
pub mod directory; // the plant directory (LDAP / AD): people, groups, password binds
pub mod fuzz; // entry points of the fuzz targets and of the corpus replay test
pub mod logs; // log hygiene: the log filter, client strings cut, repeated warnings throttled
pub mod mqtt; // the MQTT bridge: retained state, the outbox publisher, rpc/request/<client id>
pub mod objects; // objects users create, their readers (current, historical, explicit) and owners
pub mod plant; // plant mode on NATS JetStream: the plant-wide seat pool and lock, remote sessions
pub mod protocol; // Request / Response / ErrorCode, shared by daemon, CLI and MQTT
pub mod sessions; // live HMI client sessions and their licence seats, in memory
pub mod store; // SQLite: pragmas, migrations, audit trail, outbox
pub mod supervisor; // the supervisor lock and its scopes: whom a lock admits
pub mod text; // characters hidden from a terminal: the CLI's escaping and the resource id rules
