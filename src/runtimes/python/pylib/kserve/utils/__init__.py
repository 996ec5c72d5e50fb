"""kserve.utils"""
