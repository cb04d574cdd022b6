"""Reports for staff: messages, response times, missed targets and broadcast reach, as charts, tables and CSV."""
