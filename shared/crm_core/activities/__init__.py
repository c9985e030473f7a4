"""Activities: calls, emails, meetings, notes, tasks and the system types, and their store."""
