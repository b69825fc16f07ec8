"""The shared SQL base: dialects as data, statement building, Arrow ↔ DB-API value conversion."""
