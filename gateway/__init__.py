"""Threadgate gateway: Telegram (aiogram), store, admin server, config, CLI, wiring."""
