"""Every model, imported once so the metadata is whole (Alembic, tests)."""

from kefu.audit.models import AuditEntry
from kefu.auth.models import ApiToken, LoginAttempt, WebSession
from kefu.cache import ConfigStamp
from kefu.channels.models import (
    ChatRobot,
    Delivery,
    DeliveryAttempt,
    Notice,
    NotificationPreference,
    WebhookSubscription,
)
from kefu.complaints.models import Complaint, ComplaintCause
from kefu.customers.models import Contact, Customer, Industry, RevenueRecord
from kefu.db import Base
from kefu.idempotency.models import IdempotencyKey
from kefu.knowledge.models import Phrase
from kefu.loyalty.models import CustomerRevenueTrend
from kefu.mail.models import InboundMail, Mailbox, MailTemplate
from kefu.notifications.models import OutboxMessage
from kefu.portal.models import PortalAccount, PortalInvitation, PortalSession
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion, SlaTarget
from kefu.sla.models import BusinessCalendar, CalendarOverride
from kefu.staff.models import Staff, StaffRole
from kefu.surveys.models import (
    RecoveryTask,
    SatisfactionMonth,
    SurveyAnswer,
    SurveyInvitation,
    SurveyTemplate,
)
from kefu.tickets.models import (
    Category,
    EscalationStep,
    RoutingRule,
    Ticket,
    TicketAttachment,
    TicketCollaborator,
    TicketEvent,
    TicketField,
    TicketFieldValue,
    TicketView,
)
from kefu.tiering.models import TierHistory, TieringProposal, TieringRuleset, TieringRun
from kefu.units.models import Unit, UnitFunction
from kefu.visits.models import ReturnVisit, ReturnVisitAttempt

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "AuditEntry",
    "BusinessCalendar",
    "CalendarOverride",
    "Category",
    "ChatRobot",
    "Complaint",
    "ComplaintCause",
    "ConfigStamp",
    "Contact",
    "Customer",
    "CustomerRevenueTrend",
    "Delivery",
    "DeliveryAttempt",
    "EscalationStep",
    "IdempotencyKey",
    "InboundMail",
    "Industry",
    "LoginAttempt",
    "MailTemplate",
    "Mailbox",
    "Notice",
    "NotificationPreference",
    "OutboxMessage",
    "Phrase",
    "PortalAccount",
    "PortalInvitation",
    "PortalSession",
    "RecoveryTask",
    "ReturnVisit",
    "ReturnVisitAttempt",
    "RevenueRecord",
    "RoutingRule",
    "SatisfactionMonth",
    "ServiceLevel",
    "ServiceLevelVersion",
    "SlaTarget",
    "Staff",
    "StaffRole",
    "SurveyAnswer",
    "SurveyInvitation",
    "SurveyTemplate",
    "Ticket",
    "TicketAttachment",
    "TicketCollaborator",
    "TicketEvent",
    "TicketField",
    "TicketFieldValue",
    "TicketView",
    "TierHistory",
    "TieringProposal",
    "TieringRuleset",
    "TieringRun",
    "Unit",
    "UnitFunction",
    "WebSession",
    "WebhookSubscription",
    "metadata",
]
