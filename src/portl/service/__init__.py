"""The Portl service: a front door over the engine for many tenants.

This layer holds the service's state (SQLAlchemy models, Alembic migrations, tenants and their API
keys) and, later, its API and workers. It imports the engine, the job language and the ledger;
nothing below imports it. SQLAlchemy and Alembic are loaded only when a service command runs.
"""
