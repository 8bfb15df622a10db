"""Request and response bodies of /v1/videos."""

from fastapi import UploadFile
from pydantic import BaseModel, Field

from blurcore import AnonymizeParams
from jobstore.records import JobStatus
from jobstore.video_records import AudioChoice, Stage


class VideoForm(AnonymizeParams):
    """The parameters of a video upload: an image's, and what to do with its sound."""

    audio: AudioChoice = Field(
        default="keep", description="`keep` copies the audio unchanged; `mute` drops it."
    )


class VideoUpload(VideoForm):
    """A video and, optionally, its parameters (form fields beside the file)."""

    file: UploadFile = Field(description="An MP4, MOV, MKV, WebM or AVI video.")


class VideoAccepted(BaseModel):
    id: str
    status: JobStatus
    status_url: str
    result_url: str
    report_url: str


class VideoView(BaseModel):
    id: str
    status: JobStatus
    filename: str
    stage: Stage | None = Field(
        description="While running: `detect` (first pass), `write` (second pass) or `store`."
    )
    frames_done: int = Field(description="Frames' worth of work done, both passes together.")
    frames_total: int = Field(description="Frames of the video (declared until it is done).")
    percent: float = Field(ge=0, le=100, description="Never goes down; 100 once done.")
    frames_per_second: float | None
    seconds_left: float | None = Field(description="Estimated; null when unknown.")
    faces: int | None = Field(description="Face regions anonymized over all frames, once done.")
    tracks: int | None = Field(description="Faces followed through the video, once done.")
    error: str | None = Field(description="Why the video failed, when it did.")
    created_at: float
    started_at: float | None
    finished_at: float | None
    result_expires_at: float | None
