from ..identity.conftest import identity, make_member

__all__ = ["identity", "make_member"]
