"""The plan: pure functions from (lesson, images, stage, live-lesson identity, settings) to Kubernetes objects."""

from syringe.plan.addressing import Attachment, Link, plan_links
from syringe.plan.builder import Plan, build_plan
from syringe.plan.identity import LiveLessonIdentity
from syringe.plan.isolation import namespace_name
from syringe.plan.settings import PlanSettings

__all__ = [
    "Attachment",
    "Link",
    "LiveLessonIdentity",
    "Plan",
    "PlanSettings",
    "build_plan",
    "namespace_name",
    "plan_links",
]
