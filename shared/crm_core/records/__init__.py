"""The shapes of the CRM's core records as the API and the events carry them: a contact
(contact.py) and a company (company.py), with their inputs and patches. Below both the
capabilities that store them and the event definitions that carry them, so neither imports
the other for a shape."""
