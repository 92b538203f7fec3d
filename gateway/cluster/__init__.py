"""Several replicas of the gateway on one PostgreSQL database: shards of the chats, leases on
them with epochs, fencing of every thread's writes, and the handoff of shards between the
live replicas (docs/architecture.md, Replicas)."""
