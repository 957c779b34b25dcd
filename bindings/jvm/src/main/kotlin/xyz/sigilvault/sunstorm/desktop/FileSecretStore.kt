package xyz.sigilvault.sunstorm.desktop

import java.io.IOException
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.attribute.PosixFilePermissions
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.SecretStoreException

/**
 * The core's [SecretStore] as one file per secret in [dir], for desktop programs and
 * development: the directory is created `0700`, each file `0600`, written to a temporary
 * file and renamed into place (a crash never leaves half a key).
 *
 * The keys are protected by file permissions only, not encrypted: fine for a developer
 * machine and the simulators, not for a user's keys (a phone keeps them in the Keychain /
 * Keystore; see docs/embedding.md). Names are the core's (`[A-Za-z0-9._-]{1,64}`, never `.`
 * or `..`); anything else is refused, so a name cannot leave [dir]. Thread-safe.
 */
class FileSecretStore(private val dir: Path) : SecretStore {
    private val lock = Any()

    override fun get(name: String): ByteArray? {
        val file = fileOf(name)
        return try {
            Files.readAllBytes(file)
        } catch (e: NoSuchFileException) {
            null
        } catch (e: IOException) {
            throw SecretStoreException.Failed("cannot read secret $name: ${e.message}")
        }
    }

    override fun put(name: String, value: ByteArray) {
        val file = fileOf(name)
        synchronized(lock) {
            try {
                ensureDir()
                val tmp = Files.createTempFile(dir, ".$name.", ".tmp", *fileAttrs(OWNER_ONLY_FILE))
                try {
                    Files.write(tmp, value)
                    try {
                        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
                    } catch (e: AtomicMoveNotSupportedException) {
                        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING)
                    }
                } finally {
                    Files.deleteIfExists(tmp)
                }
            } catch (e: IOException) {
                throw SecretStoreException.Failed("cannot write secret $name: ${e.message}")
            }
        }
    }

    override fun delete(name: String) {
        val file = fileOf(name)
        synchronized(lock) {
            try {
                Files.deleteIfExists(file)
            } catch (e: IOException) {
                throw SecretStoreException.Failed("cannot delete secret $name: ${e.message}")
            }
        }
    }

    /** The names stored, sorted (for a settings screen or a test; never the values). */
    fun names(): List<String> = synchronized(lock) {
        if (!Files.isDirectory(dir)) return emptyList()
        Files.list(dir).use { files ->
            files.map { it.fileName.toString() }.filter { NAME.matches(it) && !it.startsWith(".") }.sorted().toList()
        }
    }

    private fun fileOf(name: String): Path {
        if (!NAME.matches(name) || name == "." || name == "..") {
            throw SecretStoreException.Failed("not a secret name: '$name'")
        }
        return dir.resolve(name)
    }

    private fun ensureDir() {
        if (Files.isDirectory(dir)) return
        try {
            Files.createDirectories(dir, *fileAttrs(OWNER_ONLY_DIR))
        } catch (e: FileAlreadyExistsException) {
            // a race with another writer: fine if it is a directory
        }
        if (!Files.isDirectory(dir)) throw SecretStoreException.Failed("$dir is not a directory")
    }

    private companion object {
        val NAME = Regex("[A-Za-z0-9._-]{1,64}")
        const val OWNER_ONLY_FILE = "rw-------"
        const val OWNER_ONLY_DIR = "rwx------"

        /** POSIX permissions where the file system has them (not on Windows). */
        fun fileAttrs(perms: String) =
            if (java.nio.file.FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
                arrayOf(PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(perms)))
            } else {
                emptyArray()
            }
    }
}
