"""Sources: where records come from (files, stdin, Kafka). Side effects live here."""
