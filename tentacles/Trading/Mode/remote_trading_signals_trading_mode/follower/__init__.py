"""follower"""
