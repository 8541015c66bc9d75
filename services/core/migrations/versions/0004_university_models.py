"""Built-in university models: faculties, courses and enrollments.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


_UPGRADE = """
    CREATE TABLE IF NOT EXISTS public.faculties_faculty (
        id bigserial PRIMARY KEY,
        code varchar(20) NOT NULL UNIQUE,
        name_fa varchar(200) NOT NULL UNIQUE,
        name_en varchar(200) UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS public.courses_course (
        id bigserial PRIMARY KEY,
        code varchar(20) NOT NULL UNIQUE,
        title_fa varchar(200),
        title_en varchar(200),
        credits smallint NOT NULL,
        faculty varchar(20) REFERENCES public.faculties_faculty (code),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT ck_courses_course_credits CHECK (credits BETWEEN 0 AND 10)
    );
    CREATE INDEX IF NOT EXISTS ix_courses_course_faculty ON public.courses_course (faculty);
    CREATE TABLE IF NOT EXISTS public.enrollments_enrollment (
        id bigserial PRIMARY KEY,
        student varchar(150) NOT NULL REFERENCES public.users_user (username),
        course varchar(20) NOT NULL REFERENCES public.courses_course (code),
        term varchar(10) NOT NULL,
        grade numeric(4,2),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_enrollments_enrollment_student_course_term UNIQUE (student, course, term),
        CONSTRAINT ck_enrollments_enrollment_term CHECK (term ~ '^[0-9]{4}-[123]$'),
        CONSTRAINT ck_enrollments_enrollment_grade CHECK (grade BETWEEN 0 AND 20)
    );
    CREATE INDEX IF NOT EXISTS ix_enrollments_enrollment_course
        ON public.enrollments_enrollment (course)
"""

_DOWNGRADE = """
    DROP TABLE IF EXISTS public.enrollments_enrollment;
    DROP TABLE IF EXISTS public.courses_course;
    DROP TABLE IF EXISTS public.faculties_faculty;
"""


def _run(script: str) -> None:
    # asyncpg prepares each statement, so they go one at a time
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(_UPGRADE)


def downgrade() -> None:
    _run(_DOWNGRADE)
