"""Transports into the handlers: the RabbitMQ consumers and the HTTP app."""
