//! Windows: each backend process lives in its own job object created with
//! `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`. Only this process holds the job's handle, so when
//! the handle closes (the [`JobObject`] is dropped, or this process dies for any reason) the
//! system ends every process in the job: the backend and whatever it started. It is the
//! Windows counterpart of Linux `PR_SET_PDEATHSIG` plus the process group, and `terminate`
//! is the Windows stop (there are no signals).
//!
//! The process is assigned right after it was spawned; a process it started before that
//! moment would not be in the job (the backend starts none before its ready line). Jobs nest
//! since Windows 8, so this works when the host itself runs inside a job.

use std::io;
use std::os::windows::io::RawHandle;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};

/// The exit code of processes ended by [`JobObject::terminate`].
const TERMINATED: u32 = 1;

/// An owned kill-on-close job object.
#[derive(Debug)]
pub struct JobObject {
    handle: HANDLE,
}

// SAFETY: a job handle is a kernel object handle, usable from any thread.
unsafe impl Send for JobObject {}
// SAFETY: the job functions used here may be called concurrently on one handle.
unsafe impl Sync for JobObject {}

impl JobObject {
    /// A new anonymous job that kills its processes when its last handle closes.
    pub fn kill_on_close() -> io::Result<Self> {
        // SAFETY: no security attributes, no name; a null handle means failure.
        let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        let job = Self { handle };
        let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `limits` is the struct the information class names, with its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.handle,
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(job)
    }

    /// Put the process behind `process` (a handle with PROCESS_SET_QUOTA and
    /// PROCESS_TERMINATE access, as a spawned child's handle has) into the job.
    pub fn assign(&self, process: RawHandle) -> io::Result<()> {
        // SAFETY: both handles are valid for the duration of the call.
        if unsafe { AssignProcessToJobObject(self.handle, process as HANDLE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// End every process in the job now.
    pub fn terminate(&self) -> io::Result<()> {
        // SAFETY: the handle is open until `drop`.
        if unsafe { TerminateJobObject(self.handle, TERMINATED) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for JobObject {
    fn drop(&mut self) {
        // SAFETY: we own the handle and close it once. Closing the last handle ends the
        // job's processes (kill on close).
        unsafe {
            CloseHandle(self.handle);
        }
    }
}
