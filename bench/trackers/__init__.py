"""What a case's calls are measured with: time, memory, FLOPs, accuracy, interference."""
