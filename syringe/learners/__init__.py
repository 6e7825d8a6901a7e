"""Learner sessions: who may see which live lessons, by bearer token. The one owner of "persistent"."""

from syringe.learners.model import LearnerSession, SessionGone, token_hash
from syringe.learners.registry import Learners, SessionStore

__all__ = ["LearnerSession", "Learners", "SessionGone", "SessionStore", "token_hash"]
