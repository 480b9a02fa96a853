"""Running a sweep: one case (runner), its budget and memory guard, passes, the run folder, executors."""
