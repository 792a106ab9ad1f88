"""What both web apps share: the error base and its one renderer, middleware, the app factory."""
