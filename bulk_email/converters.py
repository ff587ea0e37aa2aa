"""The URL converter for course keys: new-style ``course-v1:Org+Course+Run`` and Open edX's
old-style ``Org/Course/Run`` (slashes included), still the key of many courses in Open edX
databases. Its pattern is Open edX's own ``COURSE_ID_PATTERN``."""

from django.urls import register_converter


class CourseKeyConverter:
    # Three slash-separated parts, or one part without a slash; the URL resolver backtracks
    # to the second when the first would swallow the rest of the path.
    regex = r"(?:[^/]+/[^/]+/[^/]+)|(?:[^/]+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CourseKeyConverter, "course_key")
