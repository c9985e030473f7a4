"""Routes of the activities function: a contact's activities and timeline, and tasks."""
