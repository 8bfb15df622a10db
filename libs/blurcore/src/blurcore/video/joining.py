"""Join the encoded parts of a video and its original sound into one file, re-encoding nothing.

Each part's video packets are copied in order, with their timestamps; the source's audio packets
are copied as they are, interleaved by time. One seam needs care: an encoder that reorders frames
(x264's B-frames) starts each part with a few packets decoded before the part's first frame is
shown, whose decoding timestamps it invents below that frame's timestamp, and so below the
previous part's last ones. Those are spread evenly between the previous part's last decoding
timestamp and the part's first frame: for a constant frame rate exactly the timestamps one encoder
over the whole clip would have given; presentation timestamps are never changed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import av.container
import av.error
import av.packet
from av.bitstream import BitStreamFilterContext

from blurcore.errors import UnsupportedVideoError
from blurcore.video.probe import VideoSource, first_video_stream, open_container
from blurcore.video.segments import Segment, SegmentPlan
from blurcore.video.writer import WRITE_OPTIONS, copy_stream_of, muxer_for, partial_file

if TYPE_CHECKING:  # PyAV's Packet is generic in its stubs only
    Packet = av.packet.Packet[Any]


class AudioPolicy(StrEnum):
    KEEP = "keep"
    MUTE = "mute"


def join_segments(
    source: VideoSource,
    plan: SegmentPlan,
    parts: Sequence[VideoSource],
    target: Path,
    audio: AudioPolicy = AudioPolicy.KEEP,
) -> None:
    """Write ``target`` (the container its suffix names) from ``parts`` (one per segment of
    ``plan``, in order, as :meth:`VideoAnonymizer.write_segment` wrote them) and, with
    :attr:`AudioPolicy.KEEP`, the audio streams of ``source``. Raises
    :class:`UnsupportedVideoError`, writing nothing, when a part is missing or does not hold
    its segment's frames."""
    muxer = muxer_for(target)
    if len(parts) != len(plan.segments):
        raise UnsupportedVideoError(
            f"{len(parts)} parts for a plan of {len(plan.segments)} segments"
        )
    with (
        partial_file(target) as partial,
        open_container(source) as original,
        open_container(parts[0]) as first_part,
        av.open(str(partial), mode="w", format=muxer, options=WRITE_OPTIONS) as output,
    ):
        template = first_video_stream(first_part)
        video = copy_stream_of(output, template)
        video.time_base = template.time_base
        sounds = list(original.streams.audio) if audio is AudioPolicy.KEEP else []
        copies = {sound.index: copy_stream_of(output, sound) for sound in sounds}
        audio_packets = (p for p in original.demux(*sounds) if p.dts is not None) if sounds else ()
        # AVI holds H.264 only as start-code-delimited units; the parts (MP4) hold it
        # length-prefixed.
        to_annex_b = (
            BitStreamFilterContext("h264_mp4toannexb", template, video)
            if muxer == "avi" and template.codec_context.name == "h264"
            else None
        )
        merged = heapq.merge(
            _video_packets(plan, parts, template.time_base), audio_packets, key=_decoding_time
        )
        try:
            for packet in merged:
                if packet.stream.type != "video":
                    packet.stream = copies[packet.stream.index]
                    output.mux(packet)
                    continue
                for written in to_annex_b.filter(packet) if to_annex_b else [packet]:
                    written.stream = video
                    output.mux(written)
        except av.error.FFmpegError as error:
            raise UnsupportedVideoError(f"the parts do not join: {error}") from error


def _decoding_time(packet: Packet) -> Fraction:
    assert packet.dts is not None
    assert packet.time_base is not None
    return Fraction(packet.dts) * packet.time_base


def _video_packets(
    plan: SegmentPlan, parts: Sequence[VideoSource], time_base: Fraction | None
) -> Iterator[Packet]:
    """Every part's video packets in order, decoding timestamps made to rise at the seams."""
    last_dts: int | None = None
    for segment, part in zip(plan.segments, parts, strict=True):
        with open_container(part) as container:
            stream = first_video_stream(container)
            if stream.time_base != time_base:
                raise UnsupportedVideoError(
                    f"part {segment.index} counts time in {stream.time_base}, not {time_base}"
                )
            packets = (p for p in container.demux(stream) if p.size)
            for packet in _part_packets(segment, plan.time_base, packets, last_dts):
                last_dts = packet.dts
                yield packet


def _part_packets(
    segment: Segment, time_base: Fraction, packets: Iterator[Packet], last_dts: int | None
) -> Iterator[Packet]:
    """One part's packets, checked against its segment (its first frame's time, its frame
    count), those with invented decoding timestamps given ones after ``last_dts``."""
    first = next(packets, None)
    if (
        first is None
        or first.pts is None
        or first.pts * first.time_base != (segment.start_pts * time_base)
    ):
        raise UnsupportedVideoError(f"part {segment.index} does not start where its segment does")
    invented = [first] if first.dts is not None and first.dts < first.pts else []
    if not invented:
        yield first
    count = 1
    for packet in packets:
        count += 1
        if invented and packet.dts is not None and packet.dts < first.pts:
            invented.append(packet)
            continue
        yield from _risen(invented, last_dts, first.pts)
        invented = []
        yield packet
    yield from _risen(invented, last_dts, first.pts)
    if count != segment.frames:
        raise UnsupportedVideoError(
            f"part {segment.index} holds {count} frames; its segment {segment.frames}"
        )


def _risen(invented: list[Packet], last_dts: int | None, first_shown: int) -> list[Packet]:
    """``invented`` with decoding timestamps spread evenly between ``last_dts`` and the part's
    first shown frame; unchanged in the first part, which nothing precedes."""
    if last_dts is None or not invented:
        return invented
    room = first_shown - last_dts
    if room <= len(invented):
        raise UnsupportedVideoError("the parts' timestamps leave no room to join them in order")
    for rank, packet in enumerate(invented, start=1):
        packet.dts = last_dts + room * rank // (len(invented) + 1)
    return invented
