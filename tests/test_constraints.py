"""The database itself refuses what must never happen."""

import pytest
import sqlalchemy as sa

from app.models import Application, Member, Report, Shift, ShiftStatus
from tests import factories


def _refused(db, obj):
    db.add(obj)
    with pytest.raises(sa.exc.IntegrityError):
        db.commit()
    db.rollback()


def test_one_report_per_member_and_day(db):
    shift = factories.make_shift(db)
    member = factories.make_member(db, shift)
    report = factories.make_report(db, member, day=1)
    _refused(
        db,
        Report(
            member_id=member.id,
            shift_id=shift.id,
            task_id=report.task_id,
            day_number=1,
            task_date=shift.started_at,
        ),
    )


def test_one_request_and_one_membership_per_participant_and_shift(db):
    shift = factories.make_shift(db)
    participant = factories.make_participant(db)
    factories.make_application(db, participant, shift)
    _refused(db, Application(participant_id=participant.id, shift_id=shift.id))
    factories.make_member(db, shift, participant)
    _refused(
        db, Member(participant_id=participant.id, shift_id=shift.id, joined_at=shift.started_at)
    )


@pytest.mark.parametrize("status", [ShiftStatus.preparing, ShiftStatus.started])
def test_at_most_one_preparing_and_one_started_shift(db, status):
    first = factories.make_shift(db, status=status)
    _refused(
        db,
        Shift(
            number=999,
            title="Вторая смена",
            status=status,
            started_at=first.started_at,
            finished_at=first.finished_at,
        ),
    )


def test_many_finished_shifts_are_fine(db):
    factories.make_shift(db, status=ShiftStatus.finished, days=10)
    factories.make_shift(db, status=ShiftStatus.finished, days=10)


def test_unique_phone_and_telegram_id(db):
    one = factories.make_participant(db)
    _refused(
        db,
        type(one)(
            telegram_id=one.telegram_id, name="Петя", surname="Сидоров", phone="+7 900 000-00-01"
        ),
    )
    _refused(db, type(one)(telegram_id=1, name="Петя", surname="Сидоров", phone=one.phone))


def test_unique_staff_email(db, admin):
    _refused(db, type(admin)(email=admin.email, name="Двойник"))


def test_shift_dates_must_be_ordered(db):
    shift = factories.make_shift(db, status=ShiftStatus.finished, days=5)
    _refused(
        db,
        Shift(
            number=1000,
            title="Наоборот",
            status=ShiftStatus.finished,
            started_at=shift.finished_at,
            finished_at=shift.started_at,
        ),
    )


def test_timestamps_come_back_utc_aware(db):
    participant = factories.make_participant(db)
    db.expire_all()
    again = db.get(type(participant), participant.id)
    assert again.created_at.tzinfo is not None and again.created_at.utcoffset().total_seconds() == 0
